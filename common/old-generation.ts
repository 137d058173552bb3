/**
 * How far V8 lets its old space grow before the next full collection (issue 24). V8 sets the
 * next mark-compact's trigger at a factor of what was live after the last one, chosen from
 * its measured GC and mutator speeds (up to 4×). Under a fast burst, requests still in flight
 * are promoted out of the capped young generation (young-generation.ts) and that factor let
 * the main thread's old space swing between 13 and 55 MiB at 14,000 req/s on the small MLP:
 * most of the burst's peak. A fixed factor of 1 + percent / 100 collects that garbage sooner:
 * at 50 %, burst peaks of 79-82 MiB against 96-109 in three pairs, with CPU per request and
 * req/s within the noise (bench/results/2026-12-07-quiet.md).
 *
 * `--heap-growing-percent` is a V8 flag Node does not accept in NODE_OPTIONS; V8 reads it each
 * time it sets the trigger, so setting it here takes effect from the next collection, for every
 * thread of the process (V8 flags are process-wide). One on the node command line wins.
 */
import { setFlagsFromString } from 'node:v8'

/** Whether these node flags already set V8's heap growing percent. */
export function setsHeapGrowing (execArgv: readonly string[]): boolean {
  return execArgv.some(f => /^--heap[-_]growing[-_]percent/.test(f))
}

/** Fixes V8's old-generation growing factor at 1 + `percent` / 100; 0 leaves V8's own heuristics. */
export function limitOldGenerationGrowth (percent: number, execArgv: readonly string[] = process.execArgv): boolean {
  if (percent <= 0 || setsHeapGrowing(execArgv)) return false
  setFlagsFromString(`--heap-growing-percent=${Math.round(percent)}`)
  return true
}
