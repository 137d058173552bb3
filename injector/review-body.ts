/**
 * Reads and parses the body of an AdmissionReview without letting bodies exhaust memory.
 *
 * `JSON.parse` costs far more heap than the text it reads: 4 MiB of `[{},{},…]` becomes
 * ~90 MiB of objects (Node 20). So every review holds a reservation on the webhook's
 * `ByteBudget` (`--request-memory`): while the body streams in, the bytes received; once
 * it is complete, an estimate of what parsing it will cost, from one pass over the bytes
 * that also refuses deep nesting. A review that does not fit beside the others is refused
 * with `OVERLOADED` (HTTP 503, worth retrying), one that would not fit even alone with
 * `REVIEW_TOO_COSTLY` (413), both before anything large is allocated. The caller releases
 * the reservation when its answer is sent.
 */
import type { IncomingMessage } from 'node:http'
import type { ByteBudget, Reservation } from '../common/byte-budget.js'
import { readBody, type BodyCost, type BodyErrors } from '../common/read-body.js'
import { errors } from './errors.js'

/**
 * Deepest nesting accepted. The API server sends the Pod as it re-encodes it from its
 * typed object, about 15 levels deep inside the review; later code (the override
 * container's merge) recurses, so a 10 000-level body is refused here instead of
 * overflowing the stack there.
 */
export const MAX_JSON_DEPTH = 128

/**
 * What parsing costs, per item, measured with Node 20 (`JSON.parse` of 4 MiB bodies of one
 * repeated shape, heap after GC): an empty object ~58 bytes plus its 8-byte slot, an
 * empty array ~34, a member of a large object ~53, a short string or number 10-16. Each
 * object or array and each `,` or `:` is charged 64 bytes, the text itself twice (the
 * bytes and the decoded string), so the estimate is above the measured heap for every
 * shape (2x for `[{},{},…]`, the costliest per byte); the margin covers what the
 * injection then copies (bounded by `pod-limits.ts`).
 */
const BYTES_PER_CONTAINER = 64
const BYTES_PER_SEPARATOR = 64
const BYTES_PER_TEXT_BYTE = 2

export interface JsonShape {
  /** Deepest nesting seen, counting from 1 for the outer object; stops counting above the limit. */
  depth: number
  /** Objects and arrays. */
  containers: number
  /** `,` and `:` outside strings (members and elements). */
  separators: number
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_BRACE = 0x7b
const OPEN_BRACKET = 0x5b
const CLOSE_BRACE = 0x7d
const CLOSE_BRACKET = 0x5d
const COMMA = 0x2c
const COLON = 0x3a

/**
 * One pass over JSON bytes, skipping strings: nesting depth and item counts. Stops as
 * soon as the nesting passes `maxDepth` (the body is refused then). Bytes of multi-byte
 * UTF-8 characters are all >= 0x80, so they never look like structure.
 */
export function measureJson (bytes: Uint8Array, maxDepth = MAX_JSON_DEPTH): JsonShape {
  let depth = 0
  let deepest = 0
  let containers = 0
  let separators = 0
  let inString = false
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
      continue
    }
    if (c === QUOTE) {
      inString = true
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      containers++
      depth++
      if (depth > deepest) {
        deepest = depth
        if (deepest > maxDepth) break
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--
    } else if (c === COMMA || c === COLON) {
      separators++
    }
  }
  return { depth: deepest, containers, separators }
}

/** Estimated peak bytes of holding `size` bytes of JSON of that shape, its string and its parsed value. */
export function parseCost (size: number, shape: JsonShape): number {
  return size * BYTES_PER_TEXT_BYTE + shape.containers * BYTES_PER_CONTAINER + shape.separators * BYTES_PER_SEPARATOR
}

export interface ReadOptions {
  /** Largest body; above it `BODY_TOO_LARGE` (413). */
  maxBytes: number
  budget: ByteBudget
}

export interface Review {
  body: unknown
  /** Held until the answer is sent; the caller releases it. */
  reservation: Reservation
}

const reviewErrors = (maxBytes: number): BodyErrors => ({
  tooLarge: () => errors.BODY_TOO_LARGE(maxBytes),
  hungUp: detail => errors.BAD_REVIEW(`the client closed the connection before sending the whole body (${detail})`)
})

/**
 * A review's cost, held on `reservation` (opened by `start`): the bytes received so far
 * while it streams in, then `parseCost` of the whole body once it is measured.
 */
function reviewCost (budget: ByteBudget, held: { reservation?: Reservation }): BodyCost {
  /** Grows the reservation to `bytes`; throws when it cannot. */
  function reserve (bytes: number): void {
    if (bytes > budget.capacity) throw errors.REVIEW_TOO_COSTLY(bytes, budget.capacity)
    if (held.reservation?.grow(bytes) !== true) throw errors.OVERLOADED(bytes, budget.capacity)
  }
  return {
    start: declared => {
      held.reservation = budget.reserve(0)
      if (held.reservation === undefined) throw errors.OVERLOADED(declared ?? 0, budget.capacity)
      return false
    },
    // a slow client holds only what it has sent so far
    chunk: (_bytes, received) => { reserve(received) },
    end: raw => {
      const shape = measureJson(raw)
      if (shape.depth > MAX_JSON_DEPTH) throw errors.BAD_REVIEW(`the JSON is nested more than ${MAX_JSON_DEPTH} levels deep`)
      reserve(parseCost(raw.length, shape))
    }
  }
}

/**
 * Streams the body in under the budget, then measures, reserves and parses it. Rejects
 * with `BODY_TOO_LARGE`, `REVIEW_TOO_COSTLY`, `OVERLOADED`, or `BAD_REVIEW` (not JSON, nested too deep, client
 * hung up); on rejection nothing stays reserved and the rest of the body is discarded
 * unread (not buffered).
 */
export async function readReview (req: IncomingMessage, opts: ReadOptions): Promise<Review> {
  const { maxBytes, budget } = opts
  const held: { reservation?: Reservation } = {}
  try {
    const raw = await readBody(req, maxBytes, reviewErrors(maxBytes), reviewCost(budget, held))
    let body: unknown
    try {
      body = JSON.parse(raw.toString('utf8'))
    } catch (err) {
      throw errors.BAD_REVIEW(`the body is not JSON: ${(err as Error).message}`)
    }
    return { body, reservation: held.reservation as Reservation }
  } catch (err) {
    held.reservation?.release()
    throw err
  }
}
