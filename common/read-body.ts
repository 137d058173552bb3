/**
 * Reads a request body with a size limit, for the sidecar and the webhook alike.
 *
 * A declared `content-length` over the limit is refused before reading anything; a body
 * that grows past it while streaming is drained (not buffered) so the caller can still
 * answer 413. With a declared length the body is read into one buffer of that size (no
 * list of chunks and no second copy when they are joined). `charge`, when given, is
 * called with each chunk's size before it is kept; if it throws, the rest of the body is
 * drained and the promise rejects with that error (the caller's memory accounting). A
 * client that hangs up before the end settles the promise with the caller's hang-up
 * error instead of leaving it pending.
 */
import type { IncomingMessage } from 'node:http'

export interface BodyErrors {
  tooLarge: () => Error
  hungUp: (detail: string) => Error
}

export function readBody (req: IncomingMessage, limit: number, errors: BodyErrors, charge?: (bytes: number) => void): Promise<Buffer> {
  // node's parser lets through only digits up to 2^64 - 1: past 2^53 `Number` is inexact but
  // still far above any limit, so every declared length over the limit is refused here,
  // before a byte of the body is read (not streamed until the client gives up).
  const header = req.headers['content-length']
  const declared = Number(header)
  if (header !== undefined && !(declared <= limit)) return Promise.reject(errors.tooLarge())
  const known = header !== undefined && Number.isSafeInteger(declared) && declared >= 0
  return new Promise((resolve, reject) => {
    // With a declared length, a body that comes in one chunk (most do) is used as it is;
    // from the second chunk on, chunks are copied into one buffer of the declared size.
    let whole: Buffer | undefined
    const chunks: Buffer[] = []
    let size = 0
    let failed = false
    const fail = (err: Error): void => {
      failed = true
      req.removeAllListeners('data')
      req.resume()
      reject(err)
    }
    req.on('data', (chunk: Buffer) => {
      if (failed) return
      if (size + chunk.length > limit || (known && size + chunk.length > declared)) {
        fail(errors.tooLarge())
        return
      }
      if (charge !== undefined) {
        try {
          charge(chunk.length)
        } catch (err) {
          fail(err as Error)
          return
        }
      }
      if (known && size > 0) {
        if (whole === undefined) {
          whole = Buffer.allocUnsafe(declared)
          ;(chunks[0] as Buffer).copy(whole, 0)
          chunks.length = 0
        }
        chunk.copy(whole, size)
      } else {
        chunks.push(chunk)
      }
      size += chunk.length
    })
    req.on('end', () => {
      if (failed) return
      if (whole !== undefined) resolve(size === whole.length ? whole : whole.subarray(0, size))
      else resolve(chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, size))
    })
    // An aborted upload emits 'error' (ECONNRESET) and/or 'close' before 'end'.
    req.on('error', (err) => { if (!failed) reject(errors.hungUp(err.message)) })
    req.on('close', () => { if (!req.complete && !failed) reject(errors.hungUp('closed')) })
  })
}
