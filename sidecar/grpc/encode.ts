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
import type { SharedMemoryRegions } from '../shm/regions.js'
import { writeShmOutput } from '../codec/shm-tensors.js'
import type { GrpcParameter } from './decode.js'

export interface GrpcInferResponse {
  model_name: string
  model_version: string
  id: string
  outputs: Array<{ name: string, datatype: string, shape: number[], parameters?: Record<string, GrpcParameter> }>
  raw_output_contents: Uint8Array[]
}

/**
 * An output asked for in shared memory (`shm`) is written there and answered with its
 * parameters and an empty raw_output_contents entry, which keeps the entries of the
 * other outputs at their index (tritonclient's `as_numpy` counts them by output).
 */
export function encodeGrpcResponse (mv: ModelSignature, req: InferRequest, outputs: Record<string, WireTensor>, shm?: SharedMemoryRegions): GrpcInferResponse {
  const tensors: GrpcInferResponse['outputs'] = []
  const raw: Uint8Array[] = []
  for (const want of req.outputs) {
    const t = outputs[want.name]
    if (t === undefined) continue
    const { datatype, dims, data } = outputTensor(mv, want, t)
    if (want.shm !== undefined) {
      const p = writeShmOutput(want.name, want.shm, toBytes(data), shm)
      tensors.push({
        name: want.name,
        datatype,
        shape: dims,
        parameters: {
          shared_memory_region: { parameter_choice: 'string_param', string_param: p.shared_memory_region },
          shared_memory_byte_size: { parameter_choice: 'int64_param', int64_param: String(p.shared_memory_byte_size) },
          ...(p.shared_memory_offset !== undefined ? { shared_memory_offset: { parameter_choice: 'int64_param', int64_param: String(p.shared_memory_offset) } } : {})
        }
      })
      raw.push(new Uint8Array(0))
      continue
    }
    tensors.push({ name: want.name, datatype, shape: dims })
    raw.push(toBytes(data))
  }
  return { model_name: mv.name, model_version: String(mv.version), id: req.id ?? '', outputs: tensors, raw_output_contents: raw }
}
