/**
 * Encodes inference results as a gRPC `ModelInferResponse`: every output as raw
 * little-endian bytes in `raw_output_contents` (BYTES with a 4-byte length before each
 * element), as Triton's gRPC server answers. Classification outputs become BYTES
 * tensors of "score:index[:label]" strings, exactly as over REST. Pure.
 */
import { toBytes } from '../core/datatypes.js'
import type { InferRequest } from '../codec/infer-request.js'
import { outputTensor } from '../codec/infer-response.js'
import type { ModelSignature } from '../models/signature.js'
import type { WireTensor } from '../core/tensor.js'

export interface GrpcInferResponse {
  model_name: string
  model_version: string
  id: string
  outputs: Array<{ name: string, datatype: string, shape: number[] }>
  raw_output_contents: Uint8Array[]
}

export function encodeGrpcResponse (mv: ModelSignature, req: InferRequest, outputs: Record<string, WireTensor>): GrpcInferResponse {
  const tensors: GrpcInferResponse['outputs'] = []
  const raw: Uint8Array[] = []
  for (const want of req.outputs) {
    const t = outputs[want.name]
    if (t === undefined) continue
    const { datatype, dims, data } = outputTensor(mv, want, t)
    tensors.push({ name: want.name, datatype, shape: dims })
    raw.push(toBytes(data))
  }
  return { model_name: mv.name, model_version: String(mv.version), id: req.id ?? '', outputs: tensors, raw_output_contents: raw }
}
