/**
 * Reads a request body with a size limit, and splits Triton's binary tensor
 * extension (`Inference-Header-Content-Length`: a JSON header, then raw tensors).
 */
import type { IncomingMessage } from 'node:http'
import { errors } from '../errors.js'

export function readBody (req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(errors.BODY_TOO_LARGE(limit))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        req.removeAllListeners('data')
        req.resume()
        reject(errors.BODY_TOO_LARGE(limit))
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, size)))
    req.on('error', reject)
  })
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
