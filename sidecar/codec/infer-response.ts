/**
 * Encodes inference results as an Open Inference Protocol response: JSON, or a JSON
 * header followed by raw tensors (Triton's binary tensor extension) when any output
 * asked for binary data. Pure: returns bytes and headers.
 */
import { oipFromOrt, toBytes, type OipDatatype, type TensorData } from '../core/datatypes.js'
import { halfToNumber } from '../core/float16.js'
import { classify } from './classification.js'
import type { InferRequest, OutputRequest } from './infer-request.js'
import type { ModelSignature } from '../models/signature.js'
import type { WireTensor } from '../runtime/protocol.js'
import type { SharedMemoryRegions } from '../shm/regions.js'
import { writeShmOutput } from './shm-tensors.js'

export interface EncodedResponse {
  /** A string for JSON (node:http then writes headers and body in one syscall), bytes for binary. */
  body: Buffer | string
  headers: Record<string, string>
}

function jsonNumbers (data: ArrayLike<number>): string {
  const text = Array.prototype.join.call(data, ',')
  // JSON has no NaN or Infinity: such values are sent as null.
  return /[NI]/.test(text) ? Array.from(data, v => (Number.isFinite(v) ? String(v) : 'null')).join(',') : text
}

function jsonData (datatype: OipDatatype, data: TensorData): string {
  if (Array.isArray(data)) return JSON.stringify(data)
  switch (datatype) {
    case 'BOOL': return '[' + Array.from(data as Uint8Array, v => (v === 0 ? 'false' : 'true')).join(',') + ']'
    case 'FP16': return '[' + jsonNumbers(Array.from(data as Uint16Array, halfToNumber)) + ']'
    case 'INT64':
    case 'UINT64': return '[' + Array.prototype.join.call(data, ',') + ']'
    default: return '[' + jsonNumbers(data as Float32Array) + ']'
  }
}

/** An output as the client asked for it: the model's tensor, or its top-k classification strings. */
export function outputTensor (mv: ModelSignature, want: OutputRequest, t: WireTensor): { datatype: OipDatatype, dims: number[], data: TensorData } {
  if (want.classification === 0) return { datatype: oipFromOrt(t.type) as OipDatatype, dims: t.dims, data: t.data }
  const rows = mv.maxBatchSize > 0 ? (t.dims[0] ?? 1) : 1
  const c = classify(t.data, rows, want.classification, mv.labels)
  return { datatype: 'BYTES', dims: mv.maxBatchSize > 0 ? c.dims : [c.dims[1] as number], data: c.data }
}

/** `shm`: the regions that outputs asked for in shared memory are written to (see `shm-tensors.ts`). */
export function encodeInferResponse (mv: ModelSignature, req: InferRequest, outputs: Record<string, WireTensor>, shm?: SharedMemoryRegions): EncodedResponse {
  const binaries: Uint8Array[] = []
  const parts: string[] = []
  for (const want of req.outputs) {
    const t = outputs[want.name]
    if (t === undefined) continue
    const { datatype, dims, data } = outputTensor(mv, want, t)
    const head = `{"name":${JSON.stringify(want.name)},"datatype":"${datatype}","shape":[${dims.join(',')}]`
    if (want.shm !== undefined) {
      parts.push(`${head},"parameters":${JSON.stringify(writeShmOutput(want.name, want.shm, toBytes(data), shm))}}`)
    } else if (want.binary) {
      const bytes = toBytes(data)
      binaries.push(bytes)
      parts.push(`${head},"parameters":{"binary_data_size":${bytes.byteLength}}}`)
    } else {
      parts.push(`${head},"data":${jsonData(datatype, data)}}`)
    }
  }
  const id = req.id === undefined ? '' : `,"id":${JSON.stringify(req.id)}`
  const json = `{"model_name":${JSON.stringify(mv.name)},"model_version":"${mv.version}"${id},"outputs":[${parts.join(',')}]}`
  if (binaries.length === 0) {
    return { body: json, headers: { 'content-type': 'application/json' } }
  }
  const header = Buffer.from(json)
  return {
    body: Buffer.concat([header, ...binaries]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) }
  }
}
