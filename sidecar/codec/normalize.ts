/**
 * Declarative normalisation from config.yaml, applied in place to an input tensor
 * before inference, per feature (the last dimension):
 *
 *   minmax:  x' = (x - min) / (max - min)
 *   zscore:  x' = (x - mean) / std
 *
 * FP32 inputs are computed in float32, rounding after every operation exactly as numpy
 * does with float32 arrays, so results match what the model was trained and exported with.
 */
import type { Normalizer } from '../models/config-types.js'

export function normalize (data: Float32Array | Float64Array, norm: Normalizer): void {
  const f32 = data instanceof Float32Array
  const round = f32 ? Math.fround : (x: number) => x
  const off = (norm.kind === 'minmax' ? norm.min : norm.mean).map(round)
  // max - min is itself a float32 operation on float32 values.
  const div = norm.kind === 'minmax' ? norm.max.map((mx, i) => round(round(mx) - (off[i] as number))) : norm.std.map(round)
  const features = off.length
  for (let i = 0; i < data.length; i++) {
    const f = i % features
    data[i] = round(round((data[i] as number) - (off[f] as number)) / (div[f] as number))
  }
}
