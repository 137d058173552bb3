/**
 * Reads a request body with a size limit, for the sidecar and the webhook alike.
 *
 * A declared `content-length` over the limit is refused before reading anything; a body
 * that grows past it while streaming is drained (not buffered) so the caller can still
 * answer 413. A client that hangs up before the end settles the promise with the
 * caller's hang-up error instead of leaving it pending.
 */
import type { IncomingMessage } from 'node:http'

export interface BodyErrors {
  tooLarge: () => Error
  hungUp: (detail: string) => Error
}

export function readBody (req: IncomingMessage, limit: number, errors: BodyErrors): Promise<Buffer> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(errors.tooLarge())
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        req.removeAllListeners('data')
        req.resume()
        reject(errors.tooLarge())
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, size)))
    // An aborted upload emits 'error' (ECONNRESET) and/or 'close' before 'end'.
    req.on('error', (err) => reject(errors.hungUp(err.message)))
    req.on('close', () => { if (!req.complete) reject(errors.hungUp('closed')) })
  })
}
