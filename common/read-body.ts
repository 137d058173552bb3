/**
 * Reads a request body with a size limit and a pluggable memory cost: the one body reader
 * of the sidecar (sidecar/http/body.ts) and the webhook (injector/review-body.ts).
 *
 * A declared `content-length` over the limit is refused before reading anything; a body
 * that grows past it while streaming is drained (not buffered) so the caller can still
 * answer 413. With a declared length whose cost was charged whole before reading, the body
 * is read into one buffer of that size (no list of chunks and no second copy when they are
 * joined). What the body costs is the caller's `BodyCost`: charged whole up front, chunk
 * by chunk as it arrives, and/or once it is complete; a charge that throws refuses the
 * body (the rest is drained) and the promise rejects with that error. A client that hangs
 * up before the end settles the promise with the caller's hang-up error instead of
 * leaving it pending.
 */
import type { IncomingMessage } from 'node:http'

export interface BodyErrors {
  tooLarge: () => Error
  hungUp: (detail: string) => Error
}

/**
 * How much memory a body is charged, and when; each hook throws to refuse the body.
 * Every hook is optional.
 */
export interface BodyCost {
  /**
   * Called once before anything is read, after a declared length passed the limit:
   * `declared` is that length, undefined when the body has none (chunked). Throwing
   * refuses the body unread. Returns true when it charged the whole body: its chunks and
   * its end are then not charged.
   */
  start?: (declared: number | undefined) => boolean | undefined
  /** Called with each chunk's size, and the bytes received with it, before the chunk is kept. */
  chunk?: (bytes: number, received: number) => void
  /** Called with the whole body before it is returned: what using it (parsing) adds. */
  end?: (body: Buffer) => void
}

export function readBody (req: IncomingMessage, limit: number, errors: BodyErrors, cost: BodyCost = {}): Promise<Buffer> {
  // node's parser lets through only digits up to 2^64 - 1: past 2^53 `Number` is inexact but
  // still far above any limit, so every declared length over the limit is refused here,
  // before a byte of the body is read (not streamed until the client gives up).
  const header = req.headers['content-length']
  const declared = Number(header)
  if (header !== undefined && !(declared <= limit)) return Promise.reject(errors.tooLarge())
  const known = header !== undefined && Number.isSafeInteger(declared) && declared >= 0
  let chargedWhole = false
  if (cost.start !== undefined) {
    try {
      chargedWhole = cost.start(known ? declared : undefined) === true
    } catch (err) {
      return Promise.reject(err as Error)
    }
  }
  const charge = chargedWhole ? undefined : cost.chunk
  const end = chargedWhole ? undefined : cost.end
  // Chunks charged one by one are kept one by one: a slow client holds only what it sent.
  const preallocate = known && charge === undefined
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
          charge(chunk.length, size + chunk.length)
        } catch (err) {
          fail(err as Error)
          return
        }
      }
      if (preallocate && size > 0) {
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
      let body: Buffer
      if (whole !== undefined) body = size === whole.length ? whole : whole.subarray(0, size)
      else body = chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, size)
      chunks.length = 0
      if (end !== undefined) {
        try {
          end(body)
        } catch (err) {
          failed = true
          reject(err as Error)
          return
        }
      }
      resolve(body)
    })
    // An aborted upload emits 'error' (ECONNRESET) and/or 'close' before 'end'.
    req.on('error', (err) => { if (!failed) reject(errors.hungUp(err.message)) })
    req.on('close', () => { if (!req.complete && !failed) reject(errors.hungUp('closed')) })
  })
}
