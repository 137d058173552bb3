/**
 * Reads a request body with the sidecar's errors, and splits Triton's binary tensor
 * extension (`Inference-Header-Content-Length`: a JSON header, then raw tensors).
 */
import type { IncomingMessage } from 'node:http'
import { readBody as readLimitedBody, type BodyErrors } from '../../common/read-body.js'
import { errors } from '../errors.js'
import { AbandonedError } from '../runtime/batcher.js'

const bodyErrors = (limit: number): BodyErrors => ({
  tooLarge: () => errors.BODY_TOO_LARGE(limit),
  // Nobody is left to answer: the request is dropped like one abandoned in the queue (499).
  hungUp: () => new AbandonedError()
})

export async function readBody (req: IncomingMessage, limit: number): Promise<Buffer> {
  return await readLimitedBody(req, limit, bodyErrors(limit))
}

export interface ParsedBody {
  json: unknown
  binary: Uint8Array | undefined
}

export function parseInferBody (body: Buffer, headerLength: string | string[] | undefined): ParsedBody {
  let jsonPart = body
  let binary: Uint8Array | undefined
  if (headerLength !== undefined) {
    const raw = Array.isArray(headerLength) ? headerLength[0] : headerLength
    const n = Number(raw)
    if (!/^\d+$/.test(raw ?? '') || n > body.length) {
      throw errors.BAD_BINARY(`Inference-Header-Content-Length '${raw}' must be an integer between 0 and the body size (${body.length})`)
    }
    jsonPart = body.subarray(0, n)
    binary = body.subarray(n)
  }
  if (jsonPart.length === 0) throw errors.BAD_JSON('the body is empty')
  try {
    return { json: JSON.parse(jsonPart.toString('utf8')), binary }
  } catch (err) {
    throw errors.BAD_JSON((err as Error).message)
  }
}
