/**
 * Section `shadow` (issue 15), also `npm run bench:shadow` alone: what a shadow rollout at
 * 100 % sampling costs the live path.
 *
 * One repository per kind, two versions of the same-sized model (bench/onnx-builder.ts
 * `mlp`, 32→256→256→10, seeds 1 and 2). Two sidecars, identical but for config.yaml:
 *   off      no rollout; requests without a version go to the highest version
 *   shadow   `rollout: { live: 1, candidate: 2, mode: shadow, sample: 1 }`
 * Each runs the same closed-loop cells:
 *   spare_c1          1 connection: the CPU is mostly idle
 *   spare_c1_workers  1 connection, every batch on the 2 worker threads (--inline-compute-us 0)
 *   saturated_c32     32 connections: no spare CPU; shadow work should be dropped, not queued
 * in rotation (off, shadow, off, shadow, ...) for `rounds` rounds; per cell the round with
 * the median p99 is kept. Reports live p50/p99 and req/s, the ratio shadow/off, and, from
 * /metrics, how many samples were compared and how many dropped (by reason).
 *
 * Targets: live p99 within 1.1× of off in the spare cells; in the saturated cell shadow work
 * is dropped (some samples counted as dropped) and live req/s stays ≥ 0.9× off (shadow work
 * queued behind live work would take CPU from it: at 100 % sampling, up to half).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { mlp } from '../onnx-builder.js'
import { log, scrape, startSidecar, type LoadGenerator } from '../harness.js'
import type { BenchContext, Results } from './context.js'
import { CELLS, DROP_REASONS, type Measured, type ShadowSummary } from './shadow-report.js'

/** Sum of a metric's samples whose labels match `re`. */
function metricSum (text: string, name: string, re: RegExp = /.*/): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue
    const labels = line.slice(name.length, line.lastIndexOf('}') + 1)
    if (re.test(labels)) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

/** Runs the shadow cells in `dir` (two repositories are written there). */
export async function measureShadow (gen: LoadGenerator, dir: string, opts: { durationS: number, warmupS: number, rounds: number }): Promise<ShadowSummary> {
  const repos = { off: path.join(dir, 'off'), shadow: path.join(dir, 'shadow') }
  const v1 = mlp('mlp', [32, 256, 256, 10], 1)
  const v2 = mlp('mlp', [32, 256, 256, 10], 2)
  for (const [kind, repo] of Object.entries(repos)) {
    for (const [v, m] of [['1', v1], ['2', v2]] as const) {
      await mkdir(path.join(repo, 'mlp', v), { recursive: true })
      await writeFile(path.join(repo, 'mlp', v, 'model.onnx'), m.bytes)
    }
    await writeFile(path.join(repo, 'mlp', 'config.yaml'), kind === 'shadow' ? 'rollout: { live: 1, candidate: 2, mode: shadow, sample: 1 }\n' : 'version_policy: { all: {} }\n')
  }
  const body = new TextEncoder().encode(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 32], data: Array.from({ length: 32 }, (_, i) => Math.sin(i)) }] }))
  const raw: Record<string, Record<'off' | 'shadow', Measured[]>> = {}
  for (let round = 0; round < opts.rounds; round++) {
    for (const cell of CELLS) {
      for (const kind of ['off', 'shadow'] as const) {
        const sc = await startSidecar(repos[kind], ['--grpc-port', 'off', ...cell.args], { defaultParallelism: true })
        try {
          const r = await gen.run({ target: { origin: sc.origin, path: '/v2/models/mlp/infer', method: 'POST', headers: { 'content-type': 'application/json' }, body }, connections: cell.connections, warmupS: opts.warmupS, durationS: opts.durationS, serverPid: sc.child.pid })
          const text = await scrape(sc.metricsOrigin)
          const dropped: Record<string, number> = {}
          for (const reason of DROP_REASONS) dropped[reason] = metricSum(text, 'onnx_sidecar_rollout_shadow_dropped_total', new RegExp(`reason="${reason}"`))
          const m: Measured = { rps: r.rps, p50Ms: r.latency.p50 / 1e3, p99Ms: r.latency.p99 / 1e3, errors: r.errors, compared: metricSum(text, 'onnx_sidecar_rollout_comparisons_total'), dropped }
          ;((raw[cell.name] ??= { off: [], shadow: [] })[kind]).push(m)
          log(`shadow round ${round + 1}/${opts.rounds} ${cell.name} ${kind}: ${r.rps.toFixed(0)} req/s p50 ${m.p50Ms.toFixed(3)} ms p99 ${m.p99Ms.toFixed(3)} ms compared ${m.compared} dropped ${JSON.stringify(dropped)}`)
        } finally {
          await sc.stop()
        }
      }
    }
  }
  const median = (xs: Measured[]): Measured => [...xs].sort((a, b) => a.p99Ms - b.p99Ms)[Math.floor(xs.length / 2)] as Measured
  const cells: ShadowSummary['cells'] = {}
  for (const cell of CELLS) {
    const off = median(raw[cell.name]?.off ?? [])
    const shadow = median(raw[cell.name]?.shadow ?? [])
    cells[cell.name] = { off, shadow, p99Ratio: shadow.p99Ms / off.p99Ms }
  }
  return { durationS: opts.durationS, rounds: opts.rounds, cells, raw }
}

export async function runShadow (ctx: BenchContext, results: Results, opts: { durationS: number, warmupS: number, rounds: number }): Promise<void> {
  const dir = path.join(ctx.tmp, 'shadow')
  results.shadow = await measureShadow(ctx.gen, dir, opts)
}
