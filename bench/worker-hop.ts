/**
 * `npm run bench:hop`: the round trip to an inference worker on its own (issue 24).
 *
 * Part 1, in this process: sequential `WorkerPool.run` calls on one worker (postMessage
 * there, the worker parked on its doorbell, runtime/doorbell.ts; postMessage back), for an
 * empty job (an Identity model, 4 floats) and the iris model, and in-process `session.run`
 * (the floor), back to back and 1 ms apart (a thread that slept: on a VM its vCPU halted
 * and comes back cold). Median and p99 of the whole call, and of the call less the compute
 * time ONNX Runtime reports (the hop); idle, then with one busy process per CPU.
 *
 * Part 2, over HTTP: iris at concurrency 1 against two sidecars, every batch on the worker
 * (`--inline-compute-us 0`) and the default (a lone request runs inline), one after the
 * other in this run: req/s, p50 and p99. The machine is shared: compare ratios within one run.
 *
 * BENCH_HOP_CALLS (default 3000) calls per cell; BENCH_DURATION_S (5) per HTTP cell.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import ort from 'onnxruntime-node'
import { WorkerPool } from '../sidecar/runtime/worker-pool.js'
import { runSession, sessionOptions } from '../sidecar/runtime/ort-session.js'
import type { WireTensor } from '../sidecar/runtime/protocol.js'
import { createLogger } from '../common/logger.js'
import { encodeModel } from './onnx-builder.js'
import { stats } from './stats.js'
import { num, ROOT } from './env.js'
import { LoadGenerator, log, startSidecar, stopChild } from './harness.js'
import { inferTarget } from './bodies.js'

const CALLS = num('BENCH_HOP_CALLS', 3000)
const WARM_CALLS = 300
const logger = createLogger({ level: 'warn', name: 'bench-hop' })

interface Model { name: string, file: string, feeds: () => Record<string, WireTensor>, fetches: string[] }
type Runner = { name: string, gapMs?: number, run: (m: Model) => Promise<{ computeNs: number }>, close: () => Promise<void>, load: (m: Model) => Promise<void> }

function identityModel (dir: string): Model {
  const file = path.join(dir, 'identity.onnx')
  writeFileSync(file, encodeModel({
    name: 'identity',
    inputs: [{ name: 'x', shape: ['batch', 4] }],
    outputs: [{ name: 'y', shape: ['batch', 4] }],
    initializers: [],
    nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }]
  }))
  return { name: 'empty', file, feeds: () => ({ x: { type: 'float32', dims: [1, 4], data: new Float32Array([1, 2, 3, 4]) } }), fetches: ['y'] }
}

const iris: Model = {
  name: 'iris',
  file: path.join(ROOT, 'models', 'iris', '1', 'model.onnx'),
  feeds: () => ({ input: { type: 'float32', dims: [1, 4], data: new Float32Array([0.2, 0.6, 0.07, 0.04]) } }),
  fetches: []
}

function poolRunner (name: string): Runner {
  const pool = new WorkerPool({ workers: 1, threads: 1, logger })
  return {
    name,
    load: async m => {
      const meta = await pool.load(m.name, m.file)
      if (m.fetches.length === 0) m.fetches.push(...meta.outputs.filter(o => o.type !== 'non-tensor').map(o => o.name))
    },
    run: async m => await pool.run(m.name, m.feeds(), m.fetches),
    close: async () => { await pool.close() }
  }
}

function inProcessRunner (gapMs = 0): Runner {
  const sessions = new Map<string, ort.InferenceSession>()
  return {
    name: gapMs > 0 ? `in-process session.run, ${gapMs} ms apart` : 'in-process session.run',
    gapMs,
    load: async m => { sessions.set(m.name, await ort.InferenceSession.create(m.file, sessionOptions(1))) },
    run: async m => await runSession(sessions.get(m.name) as ort.InferenceSession, m.feeds(), m.fetches),
    close: async () => { for (const s of sessions.values()) await s.release() }
  }
}

async function cell (r: Runner, m: Model): Promise<string> {
  for (let i = 0; i < WARM_CALLS; i++) await r.run(m)
  const total: number[] = []
  const hop: number[] = []
  for (let i = 0; i < CALLS; i++) {
    const t0 = process.hrtime.bigint()
    const { computeNs } = await r.run(m)
    const ns = Number(process.hrtime.bigint() - t0)
    total.push(ns / 1000)
    hop.push((ns - computeNs) / 1000)
    if (r.gapMs !== undefined && r.gapMs > 0) await new Promise(resolve => setTimeout(resolve, r.gapMs))
  }
  const t = stats(total)
  const h = stats(hop)
  return `| ${m.name} | ${r.name} | ${t.p50.toFixed(1)} | ${t.p99.toFixed(1)} | ${h.p50.toFixed(1)} | ${h.p99.toFixed(1)} |`
}

/** One busy process per CPU: the loaded condition. */
function burners (): ChildProcess[] {
  return Array.from({ length: os.availableParallelism() }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }))
}

async function part1 (models: Model[]): Promise<void> {
  const runners = [poolRunner('worker (doorbell)'), inProcessRunner(), inProcessRunner(1)]
  for (const r of runners) for (const m of models) await r.load(m)
  for (const condition of ['idle', 'loaded'] as const) {
    const busy = condition === 'loaded' ? burners() : []
    try {
      console.log(`\n#### Round trip, ${condition} (${CALLS} sequential calls, µs)\n`)
      console.log('| job | path | p50 | p99 | p50 less compute | p99 less compute |\n| --- | --- | ---: | ---: | ---: | ---: |')
      for (const m of models) {
        for (const r of runners) {
          log(`hop ${condition} ${m.name} ${r.name}`)
          console.log(await cell(r, m))
        }
      }
    } finally {
      await Promise.all(busy.map(async c => { await stopChild(c) }))
    }
  }
  for (const r of runners) await r.close()
}

async function part2 (): Promise<void> {
  const body = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] }))
  const gen = new LoadGenerator()
  const cells = { worker: ['--inline-compute-us', '0'], inline: [] as string[] }
  const rows: Array<{ path: keyof typeof cells, rps: number, p50: number, p99: number }> = []
  try {
    // ABBA: a drift in the machine's load over the run weighs on both alike.
    for (const where of ['worker', 'inline', 'inline', 'worker'] as const) {
      log(`A/B iris c1 ${where}`)
      const sc = await startSidecar(path.join(ROOT, 'models'), ['--model', 'iris', ...cells[where], '--grpc-port', 'off'])
      try {
        const res = await gen.run({ target: inferTarget(sc.origin, 'iris', body), connections: 1 })
        rows.push({ path: where, rps: res.rps, p50: res.latency.p50, p99: res.latency.p99 })
      } finally {
        await sc.stop()
      }
    }
  } finally {
    await gen.close()
  }
  const mean = (where: string, k: 'rps' | 'p50' | 'p99'): number => {
    const of = rows.filter(r => r.path === where)
    return of.reduce((sum, r) => sum + r[k], 0) / of.length
  }
  const ratio = (k: 'rps' | 'p50' | 'p99'): string => `${(mean('inline', k) / mean('worker', k)).toFixed(2)}×`
  console.log('\n#### iris, concurrency 1 over HTTP JSON (µs; cells in the order run)\n')
  console.log('| the request runs | req/s | p50 | p99 |\n| --- | ---: | ---: | ---: |')
  for (const r of rows) console.log(`| ${r.path === 'worker' ? 'on the worker (--inline-compute-us 0)' : 'inline (default)'} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} |`)
  console.log(`| inline / worker (means) | ${ratio('rps')} | ${ratio('p50')} | ${ratio('p99')} |`)
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-hop-'))
try {
  console.log(`### Worker hop (${new Date().toISOString()}, ${os.availableParallelism()} CPUs, load average ${os.loadavg().map(l => l.toFixed(1)).join(' ')})`)
  await part1([identityModel(dir), iris])
  await part2()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
