/**
 * One Open Inference Protocol REST request body through a loaded version, as `serve`
 * answers it: the REST decoder (checks, min-max / z-score normalisation from config.yaml),
 * the version's batcher, and the response encoder (classification, labels). Returns the
 * decoded request's tensors and the JSON response the client would read.
 */
import { decodeInferRequest } from '../codec/infer-request.js'
import { encodeInferResponse } from '../codec/infer-response.js'
import type { ModelVersion } from '../models/model-version.js'
import type { WireTensor } from '../runtime/protocol.js'

export interface ResponseOutput {
  name: string
  datatype: string
  shape: number[]
  data: Array<number | string | boolean | null>
}

export interface Inferred {
  rows: number
  /** The model's own outputs, before encoding. */
  tensors: Record<string, WireTensor>
  /** The outputs as the JSON response carries them. */
  outputs: ResponseOutput[]
}

/** Throws the decoder's 400 `SidecarError` for a body the sidecar would refuse. */
export async function inferBody (mv: ModelVersion, body: unknown): Promise<Inferred> {
  const request = decodeInferRequest(body, undefined, mv)
  // Nothing is asked as binary: the JSON response is what is compared.
  request.outputs = request.outputs.map(o => ({ ...o, binary: false }))
  const result = await mv.batcher.submit({
    rows: request.rows,
    feeds: request.feeds,
    fetches: request.outputs.map(o => o.name),
    enqueuedNs: process.hrtime.bigint(),
    deadlineNs: 0n,
    abandoned: () => false
  })
  const encoded = encodeInferResponse(mv, request, result.outputs)
  const parsed = JSON.parse(String(encoded.body)) as { outputs: ResponseOutput[] }
  return { rows: request.rows, tensors: result.outputs, outputs: parsed.outputs }
}
