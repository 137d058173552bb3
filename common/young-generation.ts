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
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks'
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

/** Scavenges closer together than this, `BUSY_SCAVENGES` in a row, mean the new space is too small for the load. */
export const BUSY_SCAVENGE_MS = 50
export const BUSY_SCAVENGES = 20
/** At most one nudge this often: where V8 does not grow the new space, trying costs little and rarely. */
export const NUDGE_EVERY_MS = 10_000

/**
 * When a run of scavenges says the new space is too small (pure): `scavenged(at)` gets each
 * scavenge's start (ms) and answers true on the `busyCount`-th in a row less than `busyMs`
 * after the one before, at most once per `everyMs`.
 *
 * Growth factor alone is not enough: V8 grows the new space only once as many bytes have
 * survived scavenges as it holds, and an idle-released 1 MiB new space under ~3,700 small
 * requests per second saw ~10 KB survive each of its scavenges, 60 a second, for seconds on
 * end. A nudge is what V8 waits for: `capYoungGeneration` then keeps ballast a little larger
 * than a semi-space alive across one scavenge (it counts as survived; V8 grows the new space, by
 * `growthFactor` to the cap) and drops it. Light load, a few scavenges a second, never nudges.
 */
export class ScavengePace {
  readonly busyMs: number
  readonly busyCount: number
  readonly everyMs: number
  #last = -Infinity
  #run = 0
  #nudgedAt = -Infinity

  constructor (busyMs = BUSY_SCAVENGE_MS, busyCount = BUSY_SCAVENGES, everyMs = NUDGE_EVERY_MS) {
    this.busyMs = busyMs
    this.busyCount = busyCount
    this.everyMs = everyMs
  }

  scavenged (at: number): boolean {
    this.#run = at - this.#last < this.busyMs ? this.#run + 1 : 0
    this.#last = at
    if (this.#run < this.busyCount || at - this.#nudgedAt < this.everyMs) return false
    this.#nudgedAt = at
    this.#run = 0
    return true
  }
}

/** Objects of about `bytes` in all (arrays of 1,024 doubles, 8 KiB each). */
function ballastOf (bytes: number): number[][] {
  const out: number[][] = []
  for (let n = 0; n < bytes; n += 8192) out.push(new Array<number>(1024).fill(0.5))
  return out
}

const newSpaceBytes = (): number => getHeapSpaceStatistics().find(s => s.space_name === 'new_space')?.space_size ?? 0

let cap: PerformanceObserver | undefined

/**
 * Stops the new space growing past `maxBytes` (checked after each collection), grows it
 * straight there when it grows, and nudges it to grow when scavenges come too fast
 * (`ScavengePace`); 0 leaves V8's limit and its own pace.
 */
export function capYoungGeneration (maxBytes: number): void {
  if (cap !== undefined || maxBytes <= 0 || setsSemiSpace(process.execArgv, processEnv().NODE_OPTIONS)) return
  let factor = DEFAULT_GROWTH_FACTOR
  const pace = new ScavengePace()
  // Held only to be alive at the next scavenge.
  const keep: { ballast?: number[][] } = {}
  cap = new PerformanceObserver(list => {
    if (held) return // starting: the hold's factor 1 stands
    const size = newSpaceBytes()
    const next = growthFactor(size, maxBytes)
    if (next !== factor) {
      setFlagsFromString(`--semi-space-growth-factor=${next}`)
      factor = next
    }
    let nudge = false
    for (const e of list.getEntries()) {
      if ((e as { detail?: { kind?: number } }).detail?.kind !== perfConstants.NODE_PERFORMANCE_GC_MINOR) continue
      keep.ballast = undefined // it has lived through a scavenge: done
      if (pace.scavenged(e.startTime)) nudge = true
    }
    // One semi-space and a little more (`size` is both semi-spaces): what V8 must see survive.
    if (nudge && next > 1) keep.ballast = ballastOf(size / 2 + 65_536)
  })
  cap.observe({ entryTypes: ['gc'] })
}
