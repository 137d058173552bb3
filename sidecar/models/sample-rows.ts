/**
 * Request bodies generated from a version's signature: rows uniform per feature within the
 * range config.yaml declares (min-max: [min, max]; z-score: mean ± 3 std), else within
 * DEFAULT_RANGE; integers are rounded, booleans 0 or 1. Seeded: the same seed gives the
 * same rows. `onnx-sidecar check` replays them (check/sample.ts), and `serve` warms up
 * with them (inference/warmup-plan.ts).
 */
import type { ModelSignature, TensorSpec } from './signature.js'
import { prng } from '../core/prng.js'

/** An input no value can be made up for (BYTES). */
export class SampleError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'SampleError'
  }
}

/** A generated input tensor, as a REST request body carries it. */
export interface SampleTensor { name: string, datatype: string, shape: number[], data: Array<number | boolean> }

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

/** `rows` rows for `sig` as REST request bodies; throws SampleError for an input no value can be made up for (BYTES). */
export function sampleRequests (sig: ModelSignature, rows: number, seed: number): Array<Record<string, unknown>> {
  const next = prng(seed)
  const perRequest = sig.maxBatchSize > 0 ? Math.min(ROWS_PER_REQUEST, sig.maxBatchSize) : 1
  const bodies: Array<Record<string, unknown>> = []
  for (let done = 0; done < rows; done += perRequest) {
    const n = Math.min(perRequest, rows - done)
    const inputs = sig.inputs.map((input): SampleTensor => {
      if (input.datatype === 'BYTES') throw new SampleError(`input '${input.name}' is BYTES: no sample can be generated for it`)
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
