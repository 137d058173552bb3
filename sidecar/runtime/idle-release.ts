/**
 * Gives back the memory a burst took once the burst is over (issue 24). Under load the main
 * thread's V8 new space grows from 1-8 MiB to 32 MiB (and stays so), which was most of the
 * 40-50 MiB of anonymous memory a 64-connection burst added; nothing shrinks it while the
 * process idles, because V8 only shrinks it in a collection, and an idle process allocates too
 * little to trigger one. So, once no batch has run for `quietMs`, the pool runs one cheap
 * young-generation collection in each thread (gc.ts): with allocation low by then, V8
 * shrinks the new space back to its minimum. Once per burst: an idle sidecar pays nothing.
 */

/**
 * When a burst has ended, tick by tick (pure): `tick(count)` gets the number of batches run so
 * far and answers true once, on the `quietTicks`-th tick in a row without a new batch after
 * some had run (`start`: the count when it began watching).
 */
export class BurstEnd {
  readonly quietTicks: number
  #seen = 0
  #quiet = 0
  #active = false

  constructor (quietTicks: number, start = 0) {
    if (!Number.isInteger(quietTicks) || quietTicks < 1) throw new RangeError(`quietTicks must be a positive integer, not ${quietTicks}`)
    this.quietTicks = quietTicks
    this.#seen = start
  }

  tick (count: number): boolean {
    if (count !== this.#seen) {
      this.#seen = count
      this.#active = true
      this.#quiet = 0
      return false
    }
    if (!this.#active || ++this.#quiet < this.quietTicks) return false
    this.#active = false
    return true
  }
}

/** How often the pool looks at its batch count: 1 s, or `quietMs` when shorter. */
export function tickMs (quietMs: number): number {
  return Math.min(1000, quietMs)
}

/** Batches this process has run, on a worker or inline on the main thread (inline-session.ts). */
let batches = 0

/** One batch ran (worker-pool.ts, inline-session.ts). */
export function noteBatch (): void {
  batches++
}

/** Calls `release` once `quietMs` (rounded up to whole ticks) after each burst's last batch (`noteBatch()`); the timer never holds the process open. */
export class IdleRelease {
  #timer: NodeJS.Timeout

  constructor (quietMs: number, release: () => void) {
    const every = tickMs(quietMs)
    const end = new BurstEnd(Math.ceil(quietMs / every), batches)
    this.#timer = setInterval(() => { if (end.tick(batches)) release() }, every)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }
}
