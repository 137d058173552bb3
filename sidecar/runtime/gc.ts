/**
 * V8's garbage collector, called from this thread (main or an inference worker) without
 * `--expose-gc` on the command line: the flag is set just long enough to fetch `gc` from a
 * fresh context, so user code never sees a global `gc`.
 */
import { setFlagsFromString } from 'node:v8'
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
