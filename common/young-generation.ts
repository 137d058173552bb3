/**
 * V8's young generation while the sidecar starts (issue 13).
 *
 * Starting allocates in a burst (the module graph, the gRPC proto, model configs and
 * sessions) and most of it survives, which makes V8 grow the main thread's new space from
 * 2 MiB to 12-16 MiB. Nothing shrinks it again while the process is idle, so an idle sidecar
 * kept ~10 MiB of empty young generation. Holding the growth factor at 1 until the models
 * are loaded keeps it small (idle RSS -3 to -8 MiB on 1 CPU: not airtight, V8 still grows it
 * in some busy starts); releasing it then lets the new space grow under load exactly as
 * before, so serving pays nothing (a fixed `--max-semi-space-size=1` instead costs 8-20x more
 * scavenges under load: +10-20 µs per small-MLP request at 64 connections). Measurements:
 * bench/results/2026-11-30-footprint.md.
 *
 * Under load the same growth takes the new space to V8's limit, 32 MiB, which a
 * 64-connection burst reached within a second and which was half of the anonymous memory the
 * burst added (issue 24). `capYoungGeneration(max)` stops the growth at `max` instead: after
 * each collection it sets the growth factor that would take the new space to `max` in one
 * step (`growthFactor`), 1 at `max` or above (the sidecar's idle release shrinks it after a
 * burst; the next load grows it back to `max` at its first growth, not by doublings).
 * Collections are reported to it asynchronously, so when several come before it hears of
 * them the new space may still double once past `max` (the test allows that step).
 *
 * Someone who sets a semi-space flag (in the node command line or NODE_OPTIONS) keeps it:
 * nothing is changed then.
 */
import { PerformanceObserver } from 'node:perf_hooks'
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
import { processEnv } from './config.js'

/** V8's default `--semi-space-growth-factor`. */
const DEFAULT_GROWTH_FACTOR = 2

let held = false

/** Whether these node flags already choose the young generation's size or growth. */
export function setsSemiSpace (execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some(f => /^--((max|min)[-_])?semi[-_]space/.test(f))
}

/** Keeps the young generation at its initial size until `releaseYoungGeneration()`. */
export function holdYoungGeneration (): void {
  if (held || setsSemiSpace(process.execArgv, processEnv().NODE_OPTIONS)) return
  setFlagsFromString('--semi-space-growth-factor=1')
  held = true
}

/** Lets the young generation grow again (V8's default); a no-op unless held. */
export function releaseYoungGeneration (): void {
  if (!held) return
  setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH_FACTOR}`)
  held = false
}

/**
 * The growth factor that takes the new space, `newSpaceBytes` committed now, as far as the
 * cap `maxBytes` in one step, and no further: 1 (no growth) at the cap or above.
 *
 * V8 grows the new space only after as many bytes survived scavenges as it holds. A
 * sidecar's requests leave almost nothing behind, so at V8's factor 2 a new space shrunk by
 * the idle release (or held small while starting) took many seconds of steady load to
 * double its way back, and scavenged every ~25 ms meanwhile: at ~3,700 requests per second
 * on one CPU that is 1 % of the requests, and it set their p99 (iris at one connection:
 * 601-613 µs after 15 s idle; 380-384 with this factor; bench/results/2026-12-07-c1.md).
 */
export function growthFactor (newSpaceBytes: number, maxBytes: number): number {
  if (newSpaceBytes <= 0) return DEFAULT_GROWTH_FACTOR
  return Math.max(1, Math.floor(maxBytes / newSpaceBytes))
}

const newSpaceBytes = (): number => getHeapSpaceStatistics().find(s => s.space_name === 'new_space')?.space_size ?? 0

let cap: PerformanceObserver | undefined

/** Stops the new space growing past `maxBytes` (checked after each collection); 0 leaves V8's limit. */
export function capYoungGeneration (maxBytes: number): void {
  if (cap !== undefined || maxBytes <= 0 || setsSemiSpace(process.execArgv, processEnv().NODE_OPTIONS)) return
  let factor = DEFAULT_GROWTH_FACTOR
  cap = new PerformanceObserver(() => {
    if (held) return // starting: the hold's factor 1 stands
    const next = growthFactor(newSpaceBytes(), maxBytes)
    if (next === factor) return
    setFlagsFromString(`--semi-space-growth-factor=${next}`)
    factor = next
  })
  cap.observe({ entryTypes: ['gc'] })
}
