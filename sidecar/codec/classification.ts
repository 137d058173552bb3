/**
 * Triton's classification extension: an output requested with
 * `parameters: {classification: k}` comes back as a BYTES tensor of the k highest
 * scores per row, each `"score:index"` or `"score:index:label"` with the label from the
 * model's labels.txt. Scores are written as Triton does (six decimals).
 */
import type { TensorData } from '../core/datatypes.js'

export function classify (data: TensorData, rows: number, k: number, labels: string[] | undefined): { data: string[], dims: number[] } {
  const values = Array.isArray(data) ? [] : Array.from(data as ArrayLike<number | bigint>, Number)
  const perRow = values.length / rows
  const take = Math.min(k, perRow)
  const out: string[] = []
  for (let r = 0; r < rows; r++) {
    const idx = Array.from({ length: perRow }, (_, i) => i)
    const row = values.slice(r * perRow, (r + 1) * perRow)
    idx.sort((a, b) => (row[b] as number) - (row[a] as number) || a - b)
    for (const i of idx.slice(0, take)) {
      const label = labels?.[i]
      out.push(`${(row[i] as number).toFixed(6)}:${i}${label !== undefined && label !== '' ? `:${label}` : ''}`)
    }
  }
  return { data: out, dims: [rows, take] }
}
