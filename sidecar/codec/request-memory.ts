/**
 * What a request may cost in memory, charged before it is allocated.
 *
 * Every inference request opens a `RequestLease` on the sidecar's request memory (a
 * `ByteBudget` of `--request-memory` bytes) before its body is buffered, charges the
 * tensors it is about to decode before allocating them, and holds it all until its answer
 * is written: bodies being read, requests being decoded, queued and run share one cap. A
 * charge that cannot fit right now is a 503 with Retry-After (`OS_ERR_MEMORY_BUSY`); one
 * that could never fit, even alone, is a 413 (`OS_ERR_REQUEST_TOO_LARGE`).
 */
import { ByteBudget, type Reservation } from '../../common/byte-budget.js'
import { typeInfo, type OipDatatype } from '../core/datatypes.js'
import { errors } from '../core/errors.js'

/** Heap per element of a JS string array: the pointer, plus a string object header when non-empty. */
const STRING_ELEMENT_BYTES = 8 + 24

export class RequestLease {
  #reservation: Reservation
  #budget: ByteBudget

  constructor (budget: ByteBudget, reservation: Reservation) {
    this.#budget = budget
    this.#reservation = reservation
  }

  /** Adds `bytes` to what this request holds; throws 413 or 503 when it cannot. */
  charge (bytes: number): void {
    if (bytes <= 0) return
    const total = this.#reservation.bytes + bytes
    if (total > this.#budget.capacity) throw errors.REQUEST_TOO_LARGE(total, this.#budget.capacity)
    if (!this.#reservation.grow(total)) throw errors.MEMORY_BUSY(this.#budget.used, this.#budget.capacity)
  }

  release (): void {
    this.#reservation.release()
  }
}

export class RequestMemory {
  readonly budget: ByteBudget

  constructor (capacity: number) {
    this.budget = new ByteBudget(capacity)
  }

  /** Opens a lease holding `bytes`; throws 413 or 503 like `charge`. */
  open (bytes: number): RequestLease {
    const n = Math.max(0, Math.ceil(bytes))
    if (n > this.budget.capacity) throw errors.REQUEST_TOO_LARGE(n, this.budget.capacity)
    const reservation = this.budget.reserve(n)
    if (reservation === undefined) throw errors.MEMORY_BUSY(this.budget.used, this.budget.capacity)
    return new RequestLease(this.budget, reservation)
  }
}

/**
 * Bytes a decoded tensor of `count` elements takes: the typed array, or for BYTES the
 * string array, its strings, and the copy the worker thread receives.
 */
export function tensorBytes (datatype: OipDatatype, count: number, stringBytes = 0): number {
  const size = typeInfo(datatype).size
  if (size > 0) return count * size
  return 2 * (count * STRING_ELEMENT_BYTES + 2 * stringBytes)
}
