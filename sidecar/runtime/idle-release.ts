/**
 * Gives back the memory a burst took once the burst is over (issue 24). Under load the main
 * thread's V8 new space grows from 1-8 MiB to 32 MiB (and stays so), which was most of the
 * 40-50 MiB of anonymous memory a 64-connection burst added; nothing shrinks it while the
 * process idles, because V8 only shrinks it in a collection, and an idle process allocates too
 * little to trigger one. So, once no batch has run for `quietMs`, the pool runs a cheap
 * young-generation collection in each thread (gc.ts), and twice more `quietMs` apart while
 * it stays quiet: with allocation low by then, V8 shrinks the new space back to its
 * minimum. At most three per burst: an idle sidecar pays nothing.
 */

/**
 * When a burst has ended, tick by tick (pure): `tick(count)` gets the number of batches run so
 * far and answers true on the `quietTicks`-th tick in a row without a new batch after some had
 * run, and again every `quietTicks` quiet ticks after that, `times` times in all (`start`: the
 * count when it began watching). More than once because V8 shrinks the new space only when
 * its measured allocation rate is low but not zero, which one collection did not always meet
 * (the small MLP in bench/results/2026-12-07-memory.md); each is a scavenge of a near-empty
 * new space.
 */
export class BurstEnd {
  readonly quietTicks: number
  readonly times: number
  #seen = 0
  #quiet = 0
  #left = 0

  constructor (quietTicks: number, start = 0, times = 1) {
    if (!Number.isInteger(quietTicks) || quietTicks < 1) throw new RangeError(`quietTicks must be a positive integer, not ${quietTicks}`)
    if (!Number.isInteger(times) || times < 1) throw new RangeError(`times must be a positive integer, not ${times}`)
    this.quietTicks = quietTicks
    this.times = times
    this.#seen = start
  }

  tick (count: number): boolean {
    if (count !== this.#seen) {
      this.#seen = count
      this.#left = this.times
      this.#quiet = 0
      return false
    }
    if (this.#left === 0 || ++this.#quiet < this.quietTicks) return false
    this.#quiet = 0
    this.#left--
    return true
  }
}

/** Releases per burst (see BurstEnd). */
export const RELEASES = 3

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

/** Calls `release` `quietMs` (rounded up to whole ticks) after each burst's last batch (`noteBatch()`), and twice more `quietMs` apart while it stays quiet; the timer never holds the process open. */
export class IdleRelease {
  #timer: NodeJS.Timeout

  constructor (quietMs: number, release: () => void) {
    const every = tickMs(quietMs)
    const end = new BurstEnd(Math.ceil(quietMs / every), batches, RELEASES)
    this.#timer = setInterval(() => { if (end.tick(batches)) release() }, every)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }
}
