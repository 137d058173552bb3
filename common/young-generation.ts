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
 * Someone who sets a semi-space flag (in the node command line or NODE_OPTIONS) keeps it:
 * nothing is changed then.
 */
import { setFlagsFromString } from 'node:v8'
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
