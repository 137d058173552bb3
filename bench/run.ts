/**
 * `npm run bench`: measures the sidecar against its baselines in one run on this machine
 * and checks the targets of issues 3, 13 and 15. Each section is a file under
 * bench/scenarios/, run in this order (BENCH_ONLY=<section>,... runs a subset):
 *
 *   ort        in-process ONNX Runtime `session.run` (batch 1 and 32, one intra-op thread)
 *   baselines  the naive main-thread server and the same server without inference
 *   sidecar    the sidecar (`node dist/cli/main.js serve`; `npm run bench` builds first)
 *   transport  REST JSON / binary and gRPC, over TCP and Unix sockets (issue 6)
 *   rss        idle RSS with the example iris model and 1, 2, 3 workers
 *   swap       10 version swaps during 30 s of load at 32 connections
 *   footprint  one CPU for the server (issue 13): idle RSS and CPU, concurrency 1, health
 *   memory     per bench model: anonymous memory and RSS idle, during a 64-connection burst
 *              and 5/15/30 s after it; sidecar, naive and FastAPI servers (issue 24)
 *   shadow     a shadow rollout at 100 % sampling vs off (issue 15)
 *
 * The models are generated (bench/onnx-builder.ts, seeded) into a temporary repository:
 * `mlp` (32→256→256→10), `cnn` ([N,1,28,28], two conv blocks, Gemm → 10) and `mlp5m`
 * (512→2048→2048→10, ≈5.3M parameters). Load always comes from a separate process
 * (bench/load-generator.ts). Prints a table and the targets (bench/report.ts), writes
 * bench/results/latest.json and latest.md.
 *
 * Environment (bench/env.ts): BENCH_DURATION_S (recorded seconds per load cell, default 5),
 * BENCH_WARMUP_S (default 1), BENCH_ORT_DURATION_S (default 3), BENCH_SWAP_S (default 30),
 * BENCH_TRANSPORT_DURATION_S (default 3), BENCH_WORKERS / BENCH_THREADS (sidecar --workers /
 * --threads, default 1 / 1), BENCH_PROFILE=1 (CPU-profile the sidecar into
 * bench/results/profiles/<cell>/), BENCH_SIDECAR_CLI (another build's dist/cli/main.js, to A/B
 * a change), BENCH_ONLY (the sections above, comma-separated), BENCH_IDLE_S (idle CPU window
 * of the footprint section, default 60), BENCH_FOOTPRINT_ARGS (extra sidecar flags there),
 * BENCH_SHADOW_ROUNDS (rounds of the shadow section, default 3), BENCH_BURST_S (the memory
 * section's burst, default 10), BENCH_MEMORY_MODELS (small,cnn,big), BENCH_MEMORY_SERVERS
 * (sidecar,naive,fastapi), BENCH_MEMORY_ARGS / BENCH_MEMORY_ENV (extra sidecar flags / K=V there).
 */
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import ort from 'onnxruntime-node'
import { DURATION_S, ONLY, ORT_DURATION_S, PROFILE, RESULTS, ROOT, SECTIONS, SHADOW_ROUNDS, SWAP_S, THREADS, WARMUP_S, WORKERS, type Section } from './env.js'
import { LoadGenerator } from './harness.js'
import { markdown, report, table } from './report.js'
import { prepare, type BenchContext, type Results } from './scenarios/context.js'
import { runOrt } from './scenarios/ort.js'
import { runBaselines } from './scenarios/baselines.js'
import { runSidecar } from './scenarios/sidecar.js'
import { runTransport } from './scenarios/transport.js'
import { runRss } from './scenarios/rss.js'
import { runSwap } from './scenarios/swap.js'
import { runFootprint } from './scenarios/footprint.js'
import { runShadow } from './scenarios/shadow.js'
import { runMemory } from './scenarios/memory.js'

const SCENARIOS: Record<Section, (ctx: BenchContext, results: Results) => Promise<void>> = {
  ort: runOrt,
  baselines: runBaselines,
  sidecar: runSidecar,
  transport: runTransport,
  rss: runRss,
  swap: runSwap,
  footprint: runFootprint,
  memory: runMemory,
  shadow: async (ctx, results) => { await runShadow(ctx, results, { durationS: DURATION_S, warmupS: WARMUP_S, rounds: SHADOW_ROUNDS }) }
}

async function main (): Promise<void> {
  const unknown = [...ONLY].filter(s => !(SECTIONS as readonly string[]).includes(s))
  if (unknown.length > 0) throw new Error(`BENCH_ONLY: unknown section(s) ${unknown.join(', ')}; the sections are ${SECTIONS.join(', ')}`)
  const startedAt = Date.now()
  await mkdir(RESULTS, { recursive: true })
  if (PROFILE) await rm(path.join(RESULTS, 'profiles'), { recursive: true, force: true })
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'onnx-sidecar-bench-'))
  const results: Results = { ort: {}, cells: {}, rss: [] }
  const gen = new LoadGenerator()
  let bodies: BenchContext['bodies']
  try {
    const ctx = await prepare(gen, tmp)
    bodies = ctx.bodies
    for (const section of SECTIONS) {
      if (ONLY.has(section)) await SCENARIOS[section](ctx, results)
    }
  } finally {
    await gen.close()
    await rm(tmp, { recursive: true, force: true })
  }
  const { figures, checks } = report(results, bodies)

  let commit = ''
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim() } catch {}
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  const meta = {
    date: new Date().toISOString(),
    machine: `${os.availableParallelism()} CPU (${cpu}), Node ${process.version}, onnxruntime-node ${ort.env.versions.common}`,
    commit,
    durationS: DURATION_S,
    warmupS: WARMUP_S,
    ortDurationS: ORT_DURATION_S,
    swapS: SWAP_S,
    workers: WORKERS,
    threads: THREADS,
    loadavg: os.loadavg(),
    wallS: (Date.now() - startedAt) / 1000
  }
  const raw: Record<string, unknown> = { ort: results.ort, cells: results.cells, rss: results.rss, swap: results.swap, footprint: results.footprint, ...(results.shadow !== undefined ? { shadow: results.shadow } : {}), ...(results.memory !== undefined ? { memory: results.memory } : {}) }
  await writeFile(path.join(RESULTS, 'latest.json'), JSON.stringify({ meta, figures, targets: checks, raw }, null, 2) + '\n')
  const md = markdown(figures, checks, meta)
  await writeFile(path.join(RESULTS, 'latest.md'), md)

  process.stdout.write(`\nonnx-sidecar benchmark — ${meta.machine}; load average ${os.loadavg().map(l => l.toFixed(2)).join(' ')}\n\n`)
  process.stdout.write(table(figures) + `\n\nTargets (${results.shadow === undefined ? 'issues 3 and 13' : 'issues 3, 13 and 15'}):\n`)
  for (const ch of checks) process.stdout.write(`  ${ch.pass ? 'PASS' : 'FAIL'}  ${ch.target} — ${ch.measured}\n`)
  process.stdout.write(`\nwrote ${path.relative(ROOT, path.join(RESULTS, 'latest.json'))} and ${path.relative(ROOT, path.join(RESULTS, 'latest.md'))} (${meta.wallS.toFixed(0)} s)\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
