/**
 * V8's garbage collector, called from this thread (main or an inference worker) without
 * `--expose-gc` on the command line: the flag is set just long enough to fetch `gc` from a
 * fresh context, so user code never sees a global `gc`.
 */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as (opts?: { type?: 'minor' | 'major', execution?: 'sync' }) => void
setFlagsFromString('--no-expose-gc')

/** A full (mark-compact) collection: frees large garbage such as a model file's bytes at once. */
export function collectAll (): void {
  gc()
}

/**
 * A full collection that compacts the whole old space. A plain one frees the garbage but
 * moves live objects off only the pages V8 judges most fragmented, so pages holding a few
 * survivors stay committed: promoted garbage with one object in 20 kept alive left 70.5 of
 * 83.5 MiB committed for 6.8 MiB in use, where this left 7.0. It costs time in proportion to
 * what is live, so it runs once a burst is over, not on the hot path.
 */
export function collectCompacting (): void {
  setFlagsFromString('--compact-on-every-full-gc')
  try {
    gc()
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc')
  }
}

/**
 * A young-generation collection (a scavenge, well under a millisecond for an idle heap).
 * After five seconds or more of low allocation V8 shrinks the new space back to its
 * minimum when it runs one (Heap::ReduceNewSpaceSize): the 16-32 MiB a burst grew it to
 * are returned to the OS. Measured in bench/results/2026-12-07-memory.md.
 */
export function collectYoung (): void {
  gc({ type: 'minor' })
}

/** Bytes this thread's V8 old space holds from the OS (committed pages, used or not). */
export function oldSpaceCommitted (): number {
  return getHeapSpaceStatistics().find(s => s.space_name === 'old_space')?.space_size ?? 0
}

/** Old-space growth since the last release past which the next one collects in full: 4 MiB. */
export const OLD_SPACE_GROWTH = 4 * 1024 * 1024

/**
 * What a thread (the main one, or an inference worker on `trim`) collects once a burst is
 * over (idle-release.ts). Always the young generation. First a compacting full collection
 * when the old space's committed pages have grown by more than OLD_SPACE_GROWTH since the
 * last release: in a fast burst with the new space capped (`--young-generation-max`),
 * requests still in flight survive two scavenges and are promoted, and once the traffic
 * stops nothing allocates enough to bring the mark-compact that would free them (the small
 * MLP at 14,000 req/s left the old space at 56 MiB, from 11, 30 s after a 10 s burst,
 * bench/results/2026-12-07-quiet.md). It costs time in proportion to what is live (about
 * 20 ms for that heap on one CPU) and runs only after `--idle-release` of quiet. Growth that
 * is live, not garbage, moves the floor up and is not collected again. Committed, not used,
 * because pages the old space holds are what a pod pays for: a CNN burst left 17 MiB
 * committed from 11 with less than 8 MiB more in use.
 */
export class BurstCollector {
  #floor: number
  readonly #committed: () => number
  readonly #full: () => void
  readonly #young: () => void

  constructor (opts: { committed?: () => number, full?: () => void, young?: () => void } = {}) {
    this.#committed = opts.committed ?? oldSpaceCommitted
    this.#full = opts.full ?? collectCompacting
    this.#young = opts.young ?? collectYoung
    this.#floor = this.#committed()
  }

  /** Collects; answers whether the old space was collected too. */
  collect (): boolean {
    const full = this.#committed() - this.#floor > OLD_SPACE_GROWTH
    if (full) this.#full()
    this.#young()
    this.#floor = this.#committed()
    return full
  }
}
