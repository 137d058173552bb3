/**
 * Compares a candidate's outputs with the live version's for one request. Pure.
 *
 * For every output present in both: the max and mean absolute difference over its
 * elements (numeric outputs; BYTES outputs count as equal or not). An output has a top-1
 * when it is a float tensor whose last dimension holds two or more classes (argmax per
 * row), or, for a model with a labels file, an integer tensor with one class index per
 * row. The request agrees when the deciding output (`compareOutput`, else the first
 * output with a top-1) has the same top-1 on every row; a model with no such output
 * agrees when no output differs by more than `tolerance`.
 */
import type { TensorData } from '../core/datatypes.js'
import type { WireTensor } from '../runtime/protocol.js'

export interface OutputDiff {
  name: string
  maxAbsDiff: number
  meanAbsDiff: number
  /** Rows whose top-1 agrees, and rows compared; undefined when the output has no top-1. */
  top1?: { agree: number, rows: number }
}

export interface Comparison {
  agree: boolean
  /** The output that decided `agree`; undefined when the tolerance did. */
  decidedBy: string | undefined
  outputs: OutputDiff[]
}

const FLOAT = new Set(['float32', 'float64', 'float16'])
const INTEGER = new Set(['int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool'])

/** Numbers of a tensor (float16 arrives as raw half bits and is decoded by `half`). */
function numbers (t: WireTensor, half: (bits: number) => number): ArrayLike<number> | undefined {
  if (Array.isArray(t.data)) return undefined
  if (t.type === 'float16') return Array.from(t.data as Uint16Array, half)
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) return Array.from(t.data, Number)
  return t.data as ArrayLike<number>
}

/** Per-row top-1 of an output, or undefined when it has none (see the file comment). */
export function top1 (t: WireTensor, values: ArrayLike<number>, hasLabels: boolean): Int32Array | undefined {
  const last = t.dims[t.dims.length - 1] ?? 1
  if (FLOAT.has(t.type) && t.dims.length >= 1 && last >= 2) {
    const rows = values.length / last
    const out = new Int32Array(rows)
    for (let r = 0; r < rows; r++) {
      let best = 0
      for (let c = 1; c < last; c++) if ((values[r * last + c] as number) > (values[r * last + best] as number)) best = c
      out[r] = best
    }
    return out
  }
  if (hasLabels && INTEGER.has(t.type) && (t.dims.length === 1 || (t.dims.length === 2 && last === 1))) {
    return Int32Array.from(values as ArrayLike<number>)
  }
  return undefined
}

export interface CompareOptions {
  hasLabels: boolean
  compareOutput: string | undefined
  tolerance: number
  half: (bits: number) => number
}

export function compareOutputs (live: Record<string, WireTensor>, candidate: Record<string, WireTensor>, opts: CompareOptions): Comparison {
  const outputs: OutputDiff[] = []
  for (const [name, a] of Object.entries(live)) {
    const b = candidate[name]
    if (b === undefined) continue
    const x = numbers(a, opts.half)
    const y = numbers(b, opts.half)
    if (x === undefined || y === undefined || x.length !== y.length) {
      // Strings, or shapes that differ: all or nothing.
      const same = sameStrings(a.data, b.data)
      outputs.push({ name, maxAbsDiff: same ? 0 : Infinity, meanAbsDiff: same ? 0 : Infinity })
      continue
    }
    let max = 0
    let sum = 0
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs((x[i] as number) - (y[i] as number))
      const v = Number.isNaN(d) ? (Number.isNaN(x[i] as number) && Number.isNaN(y[i] as number) ? 0 : Infinity) : d
      if (v > max) max = v
      sum += v
    }
    const diff: OutputDiff = { name, maxAbsDiff: max, meanAbsDiff: x.length === 0 ? 0 : sum / x.length }
    const ta = top1(a, x, opts.hasLabels)
    const tb = ta === undefined ? undefined : top1(b, y, opts.hasLabels)
    if (ta !== undefined && tb !== undefined && ta.length === tb.length) {
      let agree = 0
      for (let r = 0; r < ta.length; r++) if (ta[r] === tb[r]) agree++
      diff.top1 = { agree, rows: ta.length }
    }
    outputs.push(diff)
  }
  const decider = opts.compareOutput !== undefined
    ? outputs.find(o => o.name === opts.compareOutput && o.top1 !== undefined)
    : outputs.find(o => o.top1 !== undefined)
  if (decider?.top1 !== undefined) {
    return { agree: decider.top1.agree === decider.top1.rows, decidedBy: decider.name, outputs }
  }
  const considered = opts.compareOutput !== undefined ? outputs.filter(o => o.name === opts.compareOutput) : outputs
  return { agree: considered.length > 0 && considered.every(o => o.maxAbsDiff <= opts.tolerance), decidedBy: undefined, outputs }
}

function sameStrings (a: TensorData, b: TensorData): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
