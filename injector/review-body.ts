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
import { jsonCost, measureJson, type JsonCost } from '../common/json-cost.js'
import { errors } from './errors.js'

/**
 * Deepest nesting accepted. The API server sends the Pod as it re-encodes it from its
 * typed object, about 15 levels deep inside the review; later code (the override
 * container's merge) recurses, so a 10 000-level body is refused here instead of
 * overflowing the stack there.
 */
export const MAX_JSON_DEPTH = 128

/**
 * What parsing a review costs (common/json-cost.ts), per item, measured with Node 20
 * (`JSON.parse` of 4 MiB bodies of one repeated shape, heap after GC): an empty object ~58
 * bytes plus its 8-byte slot, an empty array ~34, a member of a large object ~53, a short
 * string or number 10-16. Each object or array and each `,` or `:` is charged 64 bytes,
 * the text itself twice (the bytes and the decoded string), so the estimate is above the
 * measured heap for every shape (2x for `[{},{},…]`, the costliest per byte); the margin
 * covers what the injection then copies (bounded by `pod-limits.ts`).
 */
export const REVIEW_COST: JsonCost = Object.freeze({ fixed: 0, perByte: 2, perContainer: 64, perSeparator: 64 })

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
 * while it streams in, then its `REVIEW_COST` once it is measured.
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
      const shape = measureJson(raw, MAX_JSON_DEPTH)
      if (shape.depth > MAX_JSON_DEPTH) throw errors.BAD_REVIEW(`the JSON is nested more than ${MAX_JSON_DEPTH} levels deep`)
      reserve(jsonCost(REVIEW_COST, raw.length, shape))
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
