/**
 * The replay sample `--against` runs through both versions: request bodies read from
 * `--sample`, or generated from the baseline's signature. Generated rows are uniform per
 * feature within the range config.yaml declares (min-max: [min, max]; z-score: mean ± 3 std),
 * else within DEFAULT_RANGE; integers are rounded, booleans 0 or 1. Seeded: the same seed
 * gives the same rows.
 */
import { readFile } from 'node:fs/promises'
import type { ModelSignature, TensorSpec } from '../models/signature.js'
import { GoldenFormatError } from './golden.js'
import { prng } from '../core/prng.js'

/** The range of a feature config.yaml says nothing about. */
export const DEFAULT_RANGE = Object.freeze([0, 1] as const)
/** Rows per generated request (the batch's limit if smaller). */
const ROWS_PER_REQUEST = 64


function ranges (sig: ModelSignature, input: TensorSpec, features: number): Array<readonly [number, number]> {
  const norm = sig.preprocess.get(input.name)
  return Array.from({ length: features }, (_, f) => {
    if (norm?.kind === 'minmax') return [norm.min[f] as number, norm.max[f] as number] as const
    if (norm?.kind === 'zscore') return [(norm.mean[f] as number) - 3 * (norm.std[f] as number), (norm.mean[f] as number) + 3 * (norm.std[f] as number)] as const
    return DEFAULT_RANGE
  })
}

/** `rows` rows for `sig` as REST request bodies; throws GoldenFormatError for an input no value can be made up for (BYTES). */
export function generateSample (sig: ModelSignature, rows: number, seed: number): Array<Record<string, unknown>> {
  const next = prng(seed)
  const perRequest = sig.maxBatchSize > 0 ? Math.min(ROWS_PER_REQUEST, sig.maxBatchSize) : 1
  const bodies: Array<Record<string, unknown>> = []
  for (let done = 0; done < rows; done += perRequest) {
    const n = Math.min(perRequest, rows - done)
    const inputs = sig.inputs.map(input => {
      if (input.datatype === 'BYTES') throw new GoldenFormatError(`input '${input.name}' is BYTES: no sample can be generated for it; give one with --sample`)
      const shape = input.shape.map((d, i) => (d !== -1 ? d : i === 0 && sig.maxBatchSize > 0 ? n : 1))
      const features = shape[shape.length - 1] ?? 1
      const total = shape.reduce((a, b) => a * b, 1)
      const r = ranges(sig, input, features)
      const integer = !input.datatype.startsWith('FP')
      const data = Array.from({ length: total }, (_, i) => {
        if (input.datatype === 'BOOL') return next() < 0.5
        const [lo, hi] = r[i % features] as readonly [number, number]
        const v = lo + (hi - lo) * next()
        return integer ? Math.round(v) : v
      })
      return { name: input.name, datatype: input.datatype, shape, data }
    })
    bodies.push({ id: `sample-${bodies.length}`, inputs })
  }
  return bodies
}

/** `--sample FILE`: one request body, an array of them, or one per line (JSON lines). */
export async function readSample (file: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(file, 'utf8').catch((err: Error) => { throw new GoldenFormatError(`--sample ${file}: ${err.message}`) })
  let docs: unknown[]
  try {
    const doc: unknown = JSON.parse(text)
    docs = Array.isArray(doc) ? doc : [doc]
  } catch {
    try {
      docs = text.split(/\r?\n/).filter(l => l.trim() !== '').map(l => JSON.parse(l) as unknown)
    } catch (err) {
      throw new GoldenFormatError(`--sample ${file}: neither JSON nor JSON lines: ${(err as Error).message}`)
    }
  }
  if (docs.length === 0) throw new GoldenFormatError(`--sample ${file}: no request bodies`)
  return docs.map((d, i) => {
    if (typeof d !== 'object' || d === null || Array.isArray(d)) throw new GoldenFormatError(`--sample ${file}: body ${i} is not an object`)
    return d as Record<string, unknown>
  })
}
