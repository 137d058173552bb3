/**
 * Keeping the compiled request path through an idle spell (issue 24). Optimised code holds
 * the hidden classes (maps) of the objects it was compiled for weakly: a map with no object
 * left is kept for V8's `--retain-maps-for-n-gc` full collections (2 by default), then
 * collected, and every function compiled against it is thrown away. A sidecar between
 * bursts has no request in flight, and the idle release's collections (three, after 10 s
 * quiet) plus V8's own memory reducer's were enough: measured with `--trace-deopt`, 91
 * optimised functions discarded ("weak objects") during 10 s of idle, and the next burst's
 * first second ran at p99 4-5 ms on one CPU while V8 compiled them again (135 functions).
 * With 64 collections, none were discarded and the next burst re-optimised 34.
 *
 * What it keeps alive is the maps alone (tens of KB), for at most 64 full collections
 * without an object of them; a map in use again starts its count over. Like the old
 * generation's growth (old-generation.ts), a V8 flag Node does not take in NODE_OPTIONS,
 * read at every full collection, process-wide; one on the node command line wins.
 */
import { setFlagsFromString } from 'node:v8'

/** Full collections an unused map survives while optimised code depends on it (V8's default: 2). */
export const RETAIN_MAPS_GCS = 64

/** Whether these node flags already set how long V8 retains maps. */
export function setsMapRetention (execArgv: readonly string[]): boolean {
  return execArgv.some(f => /^--retain[-_]maps[-_]for[-_]n[-_]gc/.test(f))
}

/** Lets optimised code outlive RETAIN_MAPS_GCS full collections without a request; false where the node command line decides. */
export function retainOptimisedCode (execArgv: readonly string[] = process.execArgv): boolean {
  if (setsMapRetention(execArgv)) return false
  setFlagsFromString(`--retain-maps-for-n-gc=${RETAIN_MAPS_GCS}`)
  return true
}
