/**
 * A counting semaphore over bytes: requests reserve what they may cost in memory before
 * they allocate it, and give it back when they are done. A reservation that does not fit
 * is refused at once (the caller answers 503 with Retry-After) rather than queued, so a
 * flood of large requests can never hold more than `capacity` bytes between them.
 */
import assert from 'node:assert/strict'

export class Reservation {
  #budget: ByteBudget
  #bytes: number
  #released = false

  constructor (budget: ByteBudget, bytes: number) {
    this.#budget = budget
    this.#bytes = bytes
  }

  get bytes (): number { return this.#released ? 0 : this.#bytes }

  /**
   * Grows the reservation to `bytes` (the real cost turned out higher than estimated).
   * Returns false, holding what it held, when the budget cannot cover the difference.
   */
  grow (bytes: number): boolean {
    if (this.#released || bytes <= this.#bytes) return true
    if (!this.#budget.take(bytes - this.#bytes)) return false
    this.#bytes = bytes
    return true
  }

  /** Gives everything back; safe to call more than once. */
  release (): void {
    if (this.#released) return
    this.#released = true
    this.#budget.give(this.#bytes)
  }
}

export class ByteBudget {
  readonly capacity: number
  #used = 0

  constructor (capacity: number) {
    assert(Number.isFinite(capacity) && capacity > 0, 'capacity must be a positive number of bytes')
    this.capacity = capacity
  }

  /** Bytes reserved right now. */
  get used (): number { return this.#used }

  /** Reserves `bytes`, or returns undefined when they do not fit. */
  reserve (bytes: number): Reservation | undefined {
    const n = Math.max(0, Math.ceil(bytes))
    if (!this.take(n)) return undefined
    return new Reservation(this, n)
  }

  /** @internal */
  take (bytes: number): boolean {
    if (this.#used + bytes > this.capacity) return false
    this.#used += bytes
    return true
  }

  /** @internal */
  give (bytes: number): void {
    this.#used -= bytes
    assert(this.#used >= 0, 'released more bytes than were reserved')
  }
}
