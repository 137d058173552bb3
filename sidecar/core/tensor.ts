/** A tensor as it crosses between the codec, the batcher and the inference threads. */
import type { TensorData } from './datatypes.js'

export interface WireTensor {
  /** ONNX Runtime type name (`float32`, `int64`, `string`, …). */
  type: string
  dims: number[]
  data: TensorData
}
