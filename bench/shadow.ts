/**
 * `npm run bench:shadow`: what a shadow rollout at 100 % sampling costs the live path.
 *
 * One repository, two versions of the same-sized model (bench/onnx-builder.ts `mlp`,
 * 32→256→256→10, seeds 1 and 2). Two sidecars (`dist/cli/main.js serve`), identical but
 * for config.yaml:
 *   off      no rollout; requests without a version go to the highest version
 *   shadow   `rollout: { live: 1, candidate: 2, mode: shadow, sample: 1 }`
 * Each runs the same closed-loop cells (bench/load-generator.ts in its own process):
 *   spare_c1          1 connection: the CPU is mostly idle
 *   spare_c1_workers  1 connection, every batch on the 2 worker threads (--inline-compute-us 0)
 *   saturated_c32     32 connections: no spare CPU; shadow work should be dropped, not queued
 * in rotation (off, shadow, off, shadow, ...) for BENCH_SHADOW_ROUNDS rounds; per cell the
 * round with the median p99 is kept. Reports live p50/p99 and req/s, the ratio shadow/off,
 * and, from /metrics, how many samples were compared and how many dropped (by reason).
 *
 * Environment: BENCH_DURATION_S (recorded seconds per cell, default 4), BENCH_WARMUP_S
 * (default 1), BENCH_SHADOW_ROUNDS (default 3). Writes bench/results/latest.shadow.json/.md (git-ignored).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { mlp } from './onnx-builder.js'
import type { CellResult, CellSpec, Target } from './load-generator.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const num = (name: string, dflt: number): number => {
  const v = process.env[name]
  return v === undefined || v === '' ? dflt : Number(v)
}
const DURATION_S = num('BENCH_DURATION_S', 4)
const WARMUP_S = num('BENCH_WARMUP_S', 1)
const ROUNDS = num('BENCH_SHADOW_ROUNDS', 3)
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

interface Cell { name: string, connections: number, args: string[] }
const CELLS: Cell[] = [
  { name: 'spare_c1', connections: 1, args: ['--workers', '2', '--threads', '1'] },
  { name: 'spare_c1_workers', connections: 1, args: ['--workers', '2', '--threads', '1', '--inline-compute-us', '0'] },
  { name: 'saturated_c32', connections: 32, args: ['--workers', '2', '--threads', '1'] }
]

class LoadGenerator {
  #child = fork(path.join(ROOT, 'bench', 'load-generator.ts'), [], { execArgv: ['--import', 'tsx'], cwd: ROOT, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  #ready = new Promise<void>((resolve, reject) => {
    this.#child.once('message', () => resolve())
    this.#child.once('exit', code => reject(new Error(`load generator exited with code ${code}`)))
  })

  async run (target: Target, connections: number, serverPid: number | undefined): Promise<CellResult> {
    await this.#ready
    const spec: CellSpec = { op: 'cell', target, connections, warmupS: WARMUP_S, durationS: DURATION_S, serverPid }
    const reply = once(this.#child, 'message') as Promise<[{ ok: true, result: CellResult } | { ok: false, error: string }]>
    this.#child.send(spec)
    const [msg] = await reply
    if (!msg.ok) throw new Error(`load generator failed: ${msg.error}`)
    return msg.result
  }

  async close (): Promise<void> {
    const exited = once(this.#child, 'exit')
    this.#child.send({ op: 'exit' })
    await Promise.race([exited, sleep(5000)])
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL')
  }
}

interface Sidecar { child: ChildProcess, origin: string, metrics: string, stop: () => Promise<void> }

async function startSidecar (repo: string, args: string[]): Promise<Sidecar> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'cli', 'main.js'), 'serve', '--model-repository', repo, '--port', '0', '--metrics-port', '0', '--metrics-host', '127.0.0.1', '--grpc-port', 'off', ...args],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OTEL_TRACES_EXPORTER: 'none', OTEL_SDK_DISABLED: 'true' } })
  const urls = await new Promise<{ inference: string, metrics: string }>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', line => {
      try {
        const rec = JSON.parse(line) as { msg?: string, inference?: string, metrics?: string }
        if (rec.msg === 'onnx-sidecar serving' && rec.inference !== undefined && rec.metrics !== undefined) resolve({ inference: rec.inference, metrics: rec.metrics })
      } catch {}
    })
    child.once('exit', code => reject(new Error(`sidecar exited with code ${code}`)))
  })
  const metrics = new URL(urls.metrics).origin
  const deadline = Date.now() + 120_000
  for (;;) {
    const res = await request(`${metrics}/v2/health/ready`).catch(() => undefined)
    await res?.body.dump()
    if (res?.statusCode === 200) break
    if (Date.now() > deadline) throw new Error('sidecar not ready')
    await sleep(50)
  }
  return {
    child,
    origin: new URL(urls.inference).origin,
    metrics,
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
  }
}

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

interface Measured { rps: number, p50Ms: number, p99Ms: number, errors: number, compared: number, dropped: Record<string, number> }

async function main (): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-shadow-'))
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
  const gen = new LoadGenerator()
  const results: Record<string, Record<'off' | 'shadow', Measured[]>> = {}
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const cell of CELLS) {
        for (const kind of ['off', 'shadow'] as const) {
          const sc = await startSidecar(repos[kind], cell.args)
          try {
            const r = await gen.run({ origin: sc.origin, path: '/v2/models/mlp/infer', method: 'POST', headers: { 'content-type': 'application/json' }, body }, cell.connections, sc.child.pid)
            const text = await (await request(`${sc.metrics}/metrics`)).body.text()
            const dropped: Record<string, number> = {}
            for (const reason of ['in_progress', 'queue', 'candidate', 'worker']) dropped[reason] = metricSum(text, 'onnx_sidecar_rollout_shadow_dropped_total', new RegExp(`reason="${reason}"`))
            const m: Measured = { rps: r.rps, p50Ms: r.latency.p50 / 1e3, p99Ms: r.latency.p99 / 1e3, errors: r.errors, compared: metricSum(text, 'onnx_sidecar_rollout_comparisons_total'), dropped }
            ;((results[cell.name] ??= { off: [], shadow: [] })[kind]).push(m)
            console.error(`round ${round + 1} ${cell.name} ${kind}: ${r.rps.toFixed(0)} req/s p50 ${m.p50Ms.toFixed(3)} ms p99 ${m.p99Ms.toFixed(3)} ms compared ${m.compared} dropped ${JSON.stringify(dropped)}`)
          } finally {
            await sc.stop()
          }
        }
      }
    }
  } finally {
    await gen.close()
    await rm(dir, { recursive: true, force: true })
  }

  const median = (xs: Measured[]): Measured => [...xs].sort((a, b) => a.p99Ms - b.p99Ms)[Math.floor(xs.length / 2)] as Measured
  const lines = [
    `# Shadow rollout at 100 % sampling vs off (${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} CPUs, ${ROUNDS} rounds of ${DURATION_S} s, median-p99 round)`,
    '',
    '| cell | off req/s | off p50 ms | off p99 ms | shadow req/s | shadow p50 ms | shadow p99 ms | p99 shadow/off | compared | dropped (in_progress/queue/candidate/worker) |',
    '| --- | --: | --: | --: | --: | --: | --: | --: | --: | --- |'
  ]
  const summary: Record<string, unknown> = {}
  for (const cell of CELLS) {
    const off = median(results[cell.name]?.off ?? [])
    const sh = median(results[cell.name]?.shadow ?? [])
    const total = sh.compared + Object.values(sh.dropped).reduce((a, b) => a + b, 0)
    const d = sh.dropped
    lines.push(`| ${cell.name} | ${off.rps.toFixed(0)} | ${off.p50Ms.toFixed(3)} | ${off.p99Ms.toFixed(3)} | ${sh.rps.toFixed(0)} | ${sh.p50Ms.toFixed(3)} | ${sh.p99Ms.toFixed(3)} | ${(sh.p99Ms / off.p99Ms).toFixed(2)} | ${sh.compared} of ${total} | ${d.in_progress}/${d.queue}/${d.candidate}/${d.worker} |`)
    summary[cell.name] = { off, shadow: sh, p99Ratio: sh.p99Ms / off.p99Ms }
  }
  const md = lines.join('\n') + '\n'
  process.stdout.write(md)
  await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true })
  await writeFile(path.join(ROOT, 'bench', 'results', 'latest.shadow.md'), md)
  await writeFile(path.join(ROOT, 'bench', 'results', 'latest.shadow.json'), JSON.stringify({ durationS: DURATION_S, rounds: ROUNDS, cells: summary, raw: results }, null, 2) + '\n')
}

main().catch(err => {
  console.error(err)
  process.exitCode = 1
})
