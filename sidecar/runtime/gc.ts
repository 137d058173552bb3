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
 * A young-generation collection (a scavenge, well under a millisecond for an idle heap).
 * After five seconds or more of low allocation V8 shrinks the new space back to its
 * minimum when it runs one (Heap::ReduceNewSpaceSize): the 16-32 MiB a burst grew it to
 * are returned to the OS. Measured in bench/results/2026-12-07-memory.md.
 */
export function collectYoung (): void {
  gc({ type: 'minor' })
}

/** Bytes in use in this thread's V8 old space. */
export function oldSpaceUsed (): number {
  return getHeapSpaceStatistics().find(s => s.space_name === 'old_space')?.space_used_size ?? 0
}

/** Old-space growth since the last release past which the next one collects in full: 8 MiB. */
export const OLD_SPACE_GROWTH = 8 * 1024 * 1024

/**
 * What the main thread collects once a burst is over (idle-release.ts). Always the young
 * generation. First a full collection when the old space has grown by more than
 * OLD_SPACE_GROWTH since the last release: in a fast burst with the new space capped
 * (`--young-generation-max`), requests still in flight survive two scavenges and are
 * promoted, and once the traffic stops nothing allocates enough to bring the mark-compact
 * that would free them (the small MLP at 14,000 req/s left the old space at 56 MiB, from 11,
 * 30 s after a 10 s burst, bench/results/2026-12-07-quiet.md). A full collection costs
 * time in proportion to what is live (21 ms for that heap on one CPU: 22 → 11 MiB used,
 * 58 → 22 MiB committed) and runs only after `--idle-release` of quiet. Growth that is
 * live, not garbage, moves the floor up and is not collected again.
 */
export class BurstCollector {
  #floor: number
  readonly #used: () => number
  readonly #full: () => void
  readonly #young: () => void

  constructor (opts: { used?: () => number, full?: () => void, young?: () => void } = {}) {
    this.#used = opts.used ?? oldSpaceUsed
    this.#full = opts.full ?? collectAll
    this.#young = opts.young ?? collectYoung
    this.#floor = this.#used()
  }

  /** Collects; answers whether the old space was collected too. */
  collect (): boolean {
    const full = this.#used() - this.#floor > OLD_SPACE_GROWTH
    if (full) this.#full()
    this.#young()
    this.#floor = this.#used()
    return full
  }
}
