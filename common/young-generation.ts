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
 * each collection it sets the growth factor to 1 while the new space is at `max` or above,
 * and back to V8's 2 once it is below (the sidecar's idle release shrinks it after a burst).
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

/** Whether the new space, `newSpaceBytes` committed, may grow no further under a cap of `maxBytes`. */
export function growthStops (newSpaceBytes: number, maxBytes: number): boolean {
  return newSpaceBytes >= maxBytes
}

const newSpaceBytes = (): number => getHeapSpaceStatistics().find(s => s.space_name === 'new_space')?.space_size ?? 0

let cap: PerformanceObserver | undefined

/** Stops the new space growing past `maxBytes` (checked after each collection); 0 leaves V8's limit. */
export function capYoungGeneration (maxBytes: number): void {
  if (cap !== undefined || maxBytes <= 0 || setsSemiSpace(process.execArgv, processEnv().NODE_OPTIONS)) return
  let stopped = false
  cap = new PerformanceObserver(() => {
    if (held) return // starting: the hold's factor 1 stands
    const stop = growthStops(newSpaceBytes(), maxBytes)
    if (stop === stopped) return
    setFlagsFromString(`--semi-space-growth-factor=${stop ? 1 : DEFAULT_GROWTH_FACTOR}`)
    stopped = stop
  })
  cap.observe({ entryTypes: ['gc'] })
}
