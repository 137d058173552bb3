/**
 * `npm run bench`: measures the sidecar against its baselines in one run on this machine
 * and checks the targets of issue 3.
 *
 *  1. Generates three synthetic ONNX models (bench/onnx-builder.ts, seeded) into a
 *     temporary model repository: `mlp` (32→256→256→10), `cnn` ([N,1,28,28], two conv
 *     blocks, Gemm → 10) and `mlp5m` (512→2048→2048→10, ≈5.3M parameters).
 *  2. In-process ONNX Runtime `session.run` (batch 1 and 32, one intra-op thread).
 *  3. Baselines, each its own process: the naive main-thread server and the same server
 *     without inference (bench/baseline-server.ts).
 *  4. The sidecar (`node dist/cli/main.js serve`, compiled; `npm run bench` builds first).
 *  5. Idle RSS with the example iris model and 1, 2, 3 workers.
 *  6. 10 version swaps during 30 s of load at 32 connections.
 *  7. Transports (issue 6): the small MLP over REST (JSON and binary tensors) and gRPC, each
 *     over TCP and over the Unix sockets of `--socket-dir`, at 1 and 16 connections,
 *     on one sidecar, in rotation for three rounds (the median round per cell is kept);
 *     ratios against REST over TCP with the same encoding.
 *
 * Load always comes from a separate process (bench/load-generator.ts).
 * Prints a table and the targets, writes bench/results/latest.json and latest.md.
 *
 * Environment: BENCH_DURATION_S (recorded seconds per load cell, default 5),
 * BENCH_WARMUP_S (default 1), BENCH_ORT_DURATION_S (default 3), BENCH_SWAP_S (default 30), BENCH_TRANSPORT_DURATION_S (default 3),
 * BENCH_WORKERS / BENCH_THREADS (sidecar --workers / --threads, default 1 / 1),
 * BENCH_PROFILE=1 (CPU-profile the sidecar into bench/results/profiles/<cell>/),
 * BENCH_SIDECAR_CLI (another build's dist/cli/main.js, to A/B a change),
 * BENCH_ONLY=ort,baselines,sidecar,rss,swap,transport,footprint (run a subset while iterating).
 * BENCH_IDLE_S (idle CPU window of the footprint section, default 60), BENCH_FOOTPRINT_ARGS (extra sidecar flags there).
 *
 *  8. Footprint (issue 13), on one CPU: the server under test pinned to CPU 0 and the load
 *     generator to CPU 1 (taskset), the sidecar with default flags (a 1-CPU sidecar): idle
 *     RSS with the three bench models and with iris alone, where it goes (node binary,
 *     libonnxruntime, anonymous), concurrency 1 on the small MLP, the 5M MLP and iris
 *     against the naive server, and idle CPU over BENCH_IDLE_S.
 */
import { fork, spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, mkdir, rename, rm, writeFile, readFile } from 'node:fs/promises'
import { once } from 'node:events'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import * as protoLoader from '@grpc/proto-loader'
import ort from 'onnxruntime-node'
import { request } from 'undici'
import { benchModels, mlp, type SyntheticModel } from './onnx-builder.js'
import type { CellResult, CellSpec, Target } from './load-generator.js'
import { stats, type LatencyStats } from './stats.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const RESULTS = path.join(ROOT, 'bench', 'results')
const env = process.env
const num = (name: string, dflt: number): number => {
  const v = env[name]
  if (v === undefined || v === '') return dflt
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v} is not a non-negative number`)
  return n
}
const DURATION_S = num('BENCH_DURATION_S', 5)
const WARMUP_S = num('BENCH_WARMUP_S', 1)
const ORT_DURATION_S = num('BENCH_ORT_DURATION_S', Math.min(3, DURATION_S))
const SWAP_S = num('BENCH_SWAP_S', 30)
const SWAPS = 10
const TRANSPORT_ROUNDS = 3
const TRANSPORT_DURATION_S = num('BENCH_TRANSPORT_DURATION_S', Math.min(3, DURATION_S))
const WORKERS = num('BENCH_WORKERS', 1)
const THREADS = num('BENCH_THREADS', 1)
const PROFILE = env.BENCH_PROFILE === '1'
/** The sidecar CLI to run; point it at another build to A/B a change. */
const SIDECAR_CLI = path.resolve(env.BENCH_SIDECAR_CLI ?? path.join(ROOT, 'dist', 'cli', 'main.js'))
const ONLY = new Set((env.BENCH_ONLY ?? 'ort,baselines,sidecar,rss,swap,transport,footprint').split(',').map(s => s.trim()))
const IDLE_S = num('BENCH_IDLE_S', 60)
/** Extra sidecar flags for the footprint section (A/B a choice, e.g. `--inference-thread worker`). */
const FOOTPRINT_ARGS = (env.BENCH_FOOTPRINT_ARGS ?? '').split(' ').filter(a => a !== '')

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const log = (msg: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }

// ---- request bodies -------------------------------------------------------------------

/** Float32 values as a JSON client would print them (shortest round-trip decimal of the float32). */
function randomInput (n: number, seed: number): Float32Array {
  let a = seed
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0
    out[i] = a / 4294967296
  }
  return out
}

function jsonBody (m: SyntheticModel, data: Float32Array): Uint8Array {
  return Buffer.from(JSON.stringify({
    inputs: [{ name: m.input.name, shape: [1, ...m.input.shape], datatype: 'FP32', data: Array.from(data) }]
  }))
}

function binaryBody (m: SyntheticModel, data: Float32Array): { body: Uint8Array, headerLength: number } {
  const header = Buffer.from(JSON.stringify({
    inputs: [{ name: m.input.name, shape: [1, ...m.input.shape], datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }],
    outputs: [{ name: m.output.name, parameters: { binary_data: true } }]
  }))
  return { body: Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]), headerLength: header.byteLength }
}

/** A serialized gRPC ModelInferRequest with raw contents (what tritonclient.grpc sends). */
function grpcInferMessage (m: SyntheticModel, data: Float32Array): Uint8Array {
  const def = protoLoader.loadSync(path.join(ROOT, 'sidecar', 'grpc', 'oip.proto'), { keepCase: true, longs: String, defaults: true, oneofs: true })
  const method = (def['inference.GRPCInferenceService'] as unknown as Record<string, { requestSerialize: (v: object) => Buffer }>).ModelInfer as { requestSerialize: (v: object) => Buffer }
  return method.requestSerialize({
    model_name: m.name,
    inputs: [{ name: m.input.name, datatype: 'FP32', shape: [1, ...m.input.shape] }],
    raw_input_contents: [Buffer.from(data.buffer, data.byteOffset, data.byteLength)]
  })
}

const JSON_HEADERS = { 'content-type': 'application/json' }

function inferTarget (origin: string, model: string, body: Uint8Array, headers: Record<string, string> = JSON_HEADERS): Target {
  return { origin, path: `/v2/models/${model}/infer`, method: 'POST', headers, body }
}

// ---- the load generator process --------------------------------------------------------

class LoadGenerator {
  #child: ChildProcess
  #ready: Promise<void>

  constructor () {
    this.#child = fork(path.join(ROOT, 'bench', 'load-generator.ts'), [], {
      execArgv: ['--import', 'tsx'],
      cwd: ROOT, // `--import tsx` resolves from here
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    this.#ready = new Promise((resolve, reject) => {
      this.#child.once('message', () => resolve())
      this.#child.once('exit', code => reject(new Error(`load generator exited with code ${code}`)))
    })
  }

  /** Pins the load generator to CPUs (taskset -p), e.g. '1'; false where taskset is missing. */
  async pin (cpus: string): Promise<boolean> {
    await this.#ready
    return pinProcess(this.#child.pid as number, cpus)
  }

  async run (spec: Omit<CellSpec, 'op' | 'warmupS' | 'durationS'> & { warmupS?: number, durationS?: number }): Promise<CellResult> {
    await this.#ready
    const full: CellSpec = { op: 'cell', warmupS: WARMUP_S, durationS: DURATION_S, ...spec }
    const reply = once(this.#child, 'message') as Promise<[{ ok: true, result: CellResult } | { ok: false, error: string }]>
    this.#child.send(full)
    const [msg] = await reply
    if (!msg.ok) throw new Error(`load generator failed: ${msg.error}`)
    return msg.result
  }

  async close (): Promise<void> {
    if (this.#child.exitCode !== null) return
    const exited = once(this.#child, 'exit')
    this.#child.send({ op: 'exit' })
    await Promise.race([exited, sleep(5000)])
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL')
  }
}

// ---- servers under test ------------------------------------------------------------------

interface Server {
  child: ChildProcess
  origin: string
  /** Where /v2/health/ready and /metrics answer (the sidecar's metrics port). */
  metricsOrigin: string
  stop: () => Promise<void>
}

function pinProcess (pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Runs `argv` on CPU `cpu` when taskset is there and the machine has more than one CPU. */
function pinned (cpu: string | undefined, argv: string[]): [string, string[]] {
  if (cpu === undefined || os.availableParallelism() < 2) return [argv[0] as string, argv.slice(1)]
  try { execFileSync('taskset', ['-V'], { stdio: 'ignore' }) } catch { return [argv[0] as string, argv.slice(1)] }
  return ['taskset', ['-c', cpu, ...argv]]
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}

async function startBaseline (kind: 'naive' | 'noinfer', modelFile: string, cpu?: string): Promise<Server> {
  const [cmd, argv] = pinned(cpu, [process.execPath, '--import', 'tsx', path.join(ROOT, 'bench', `${kind}-server.ts`), modelFile, String(THREADS)])
  const child = spawn(cmd, argv, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const port = await new Promise<number>((resolve, reject) => {
    lines.once('line', line => resolve((JSON.parse(line) as { port: number }).port))
    child.once('exit', code => reject(new Error(`${kind} server exited with code ${code}`)))
  })
  const origin = `http://127.0.0.1:${port}`
  return { child, origin, metricsOrigin: origin, stop: async () => { lines.close(); await stopChild(child) } }
}

interface SidecarServer extends Server {
  logs: string[]
  /** host:port of the gRPC listener; undefined with --grpc-port off. */
  grpc?: string
  /** With --socket-dir: the REST and gRPC socket files. */
  sockets?: { http: string, grpc?: string }
}

async function startSidecar (repo: string, args: string[] = [], opts: { profileDir?: string, cpu?: string, defaultParallelism?: boolean } = {}): Promise<SidecarServer> {
  const profileArgs = opts.profileDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`] : []
  const [cmd, argv] = pinned(opts.cpu, [process.execPath,
    ...profileArgs,
    SIDECAR_CLI, 'serve',
    '--model-repository', repo,
    '--port', '0', '--metrics-port', '0', '--metrics-host', '127.0.0.1',
    ...(opts.defaultParallelism === true ? [] : ['--workers', String(WORKERS), '--threads', String(THREADS)]),
    ...(args.includes('--grpc-port') ? [] : ['--grpc-port', '0']), // gRPC on, as by default, on a free port
    ...args
  ])
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, OTEL_TRACES_EXPORTER: 'none', OTEL_SDK_DISABLED: 'true' } })
  const logs: string[] = []
  const keep = (line: string): void => { logs.push(line); if (logs.length > 200) logs.shift() }
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', keep)
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  interface Serving { inference: string, metrics: string, grpc?: string, sockets?: { http: string, grpc?: string } }
  const urls = await new Promise<Serving>((resolve, reject) => {
    lines.on('line', line => {
      keep(line)
      try {
        const rec = JSON.parse(line) as Partial<Serving> & { msg?: string }
        if (rec.msg === 'onnx-sidecar serving' && rec.inference !== undefined && rec.metrics !== undefined) {
          resolve(rec as Serving)
        }
      } catch {}
    })
    child.once('exit', code => reject(new Error(`sidecar exited with code ${code}:\n${logs.join('\n')}`)))
  })
  const metricsOrigin = new URL(urls.metrics).origin
  const deadline = Date.now() + 120_000
  for (;;) {
    const res = await request(`${metricsOrigin}/v2/health/ready`).catch(() => undefined)
    const status = res?.statusCode
    await res?.body.dump()
    if (status === 200) break
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`sidecar not ready:\n${logs.join('\n')}`)
    await sleep(50)
  }
  return {
    child,
    origin: new URL(urls.inference).origin,
    metricsOrigin,
    logs,
    ...(urls.grpc !== undefined && urls.grpc !== 'off' ? { grpc: urls.grpc } : {}),
    ...(urls.sockets !== undefined ? { sockets: urls.sockets } : {}),
    stop: async () => { await stopChild(child) }
  }
}

/** Sum and count of the batch-size histogram per model, from /metrics. */
function batchSizes (text: string): Record<string, { sum: number, count: number }> {
  const out: Record<string, { sum: number, count: number }> = {}
  for (const m of text.matchAll(/^onnx_sidecar_inference_batch_size_(sum|count)\{[^}]*model="([^"]+)"[^}]*\} ([0-9.e+-]+)$/gm)) {
    const [, kind, model, value] = m as unknown as [string, 'sum' | 'count', string, string]
    const e = out[model] ?? (out[model] = { sum: 0, count: 0 })
    e[kind] += Number(value)
  }
  return out
}

const scrape = async (metricsOrigin: string): Promise<string> => await (await request(`${metricsOrigin}/metrics`)).body.text()
const gauge = (text: string, name: string): number => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN)

/**
 * Runs a cell and adds, from the sidecar's /metrics, the mean executed batch size and the
 * main thread's event-loop delay over the cell (prom-client resets its event-loop
 * histogram at each scrape, so the scrape before the cell starts a fresh window).
 */
async function meanBatch (metricsOrigin: string, model: string, cell: () => Promise<CellResult>): Promise<Cell> {
  const before = batchSizes(await scrape(metricsOrigin))[model] ?? { sum: 0, count: 0 }
  const result = await cell()
  const text = await scrape(metricsOrigin)
  const after = batchSizes(text)[model] ?? { sum: 0, count: 0 }
  const p99 = gauge(text, 'nodejs_eventloop_lag_p99_seconds') * 1000
  const max = gauge(text, 'nodejs_eventloop_lag_max_seconds') * 1000
  return { ...result, meanBatchRows: (after.sum - before.sum) / Math.max(1, after.count - before.count), ...(Number.isFinite(p99) ? { eventLoopDelayMs: { p99, max } } : {}) }
}

type Cell = CellResult & { meanBatchRows?: number, eventLoopDelayMs?: { p99: number, max: number } }

/** Resident MiB per mapping kind (the node binary, libonnxruntime, other files, anonymous), from /proc/PID/smaps. */
async function rssByMapping (pid: number): Promise<Record<string, number>> {
  const out: Record<string, number> = { node: 0, onnxruntime: 0, otherFiles: 0, anonymous: 0 }
  let kind = 'anonymous'
  for (const line of (await readFile(`/proc/${pid}/smaps`, 'utf8')).split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (m !== null) {
      const name = m[1] ?? ''
      kind = name === '' || name.startsWith('[') ? 'anonymous' : name.includes('libonnxruntime') ? 'onnxruntime' : name === process.execPath || name.endsWith('/node') ? 'node' : 'otherFiles'
    } else if (line.startsWith('Rss:')) {
      out[kind] = (out[kind] ?? 0) + Number(line.split(/\s+/)[1]) / 1024
    }
  }
  return out
}

/** utime + stime of a process in seconds (all its threads), from /proc/PID/stat. */
async function cpuSeconds (pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8')
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

/** VmRSS, and its anonymous and file-backed parts (node binary, libonnxruntime), from /proc/PID/status. */
async function rssOf (pid: number): Promise<{ mib: number, anonMib: number, fileMib: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)
    if (m === null) throw new Error(`no ${key} for pid ${pid}`)
    return Number(m[1]) / 1024
  }
  return { mib: kb('VmRSS'), anonMib: kb('RssAnon'), fileMib: kb('RssFile') + kb('RssShmem') }
}

// ---- in-process ONNX Runtime ------------------------------------------------------------

interface OrtResult { batch: number, calls: number, rowsPerS: number, latency: LatencyStats }

async function ortCell (m: SyntheticModel, batch: number): Promise<OrtResult> {
  const session = await ort.InferenceSession.create(m.bytes, { intraOpNumThreads: THREADS, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' })
  const perRow = m.input.shape.reduce((a, b) => a * b, 1)
  const feeds = { [m.input.name]: new ort.Tensor('float32', randomInput(batch * perRow, 7), [batch, ...m.input.shape]) }
  const warmEnd = process.hrtime.bigint() + BigInt(Math.round(Math.min(WARMUP_S, 1) * 1e9))
  while (process.hrtime.bigint() < warmEnd) await session.run(feeds)
  const samples: number[] = []
  const started = process.hrtime.bigint()
  const end = started + BigInt(Math.round(ORT_DURATION_S * 1e9))
  let now = started
  while (now < end) {
    const t0 = now
    await session.run(feeds)
    now = process.hrtime.bigint()
    samples.push(Number(now - t0) / 1000)
  }
  const seconds = Number(now - started) / 1e9
  await session.release()
  return { batch, calls: samples.length, rowsPerS: samples.length * batch / seconds, latency: stats(samples) }
}

// ---- the report --------------------------------------------------------------------------

interface Figure {
  id: string
  label: string
  value: number
  unit: string
  /** What the ratio compares with. */
  baseline?: string
  ratio?: number
  note?: string
}

interface TargetCheck {
  target: string
  measured: string
  pass: boolean
}

const fmt = (v: number, unit = ''): string => {
  if (!Number.isFinite(v)) return 'n/a'
  const s = Number.isInteger(v) || Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2)
  return unit === '' ? s : `${s} ${unit}`
}
const fmtRatio = (r: number | undefined): string => (r === undefined ? '' : Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a')

function table (figures: Figure[]): string {
  const rows = figures.map(f => [f.label, fmt(f.value, f.unit), f.baseline ?? '', fmtRatio(f.ratio), f.note ?? ''])
  const head = ['figure', 'value', 'baseline', 'ratio', 'note']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] as string).length)))
  const line = (r: string[]): string => r.map((c, i) => (i === 1 || i === 3 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ').trimEnd()
  return [line(head), widths.map(w => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

function markdown (figures: Figure[], checks: TargetCheck[], meta: Record<string, unknown>): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|')
  const out = [
    `Measured by \`npm run bench\` on ${String(meta.machine)}, ${String(meta.date)} (${String(meta.durationS)} s per load cell after ${String(meta.warmupS)} s warm-up; sidecar \`--workers ${String(meta.workers)} --threads ${String(meta.threads)}\`; load from a separate process; load average at the end ${(meta.loadavg as number[]).map(l => l.toFixed(2)).join(' ')}).`,
    '',
    '| figure | value | baseline | ratio | note |',
    '| --- | ---: | --- | ---: | --- |',
    ...figures.map(f => `| ${esc(f.label)} | ${fmt(f.value, f.unit)} | ${esc(f.baseline ?? '')} | ${fmtRatio(f.ratio)} | ${esc(f.note ?? '')} |`),
    '',
    '| target | measured | result |',
    '| --- | --- | --- |',
    ...checks.map(c => `| ${esc(c.target)} | ${esc(c.measured)} | ${c.pass ? 'PASS' : '**FAIL**'} |`),
    ''
  ]
  return out.join('\n')
}

// ---- the run -----------------------------------------------------------------------------

async function main (): Promise<void> {
  const startedAt = Date.now()
  await mkdir(RESULTS, { recursive: true })
  if (PROFILE) await rm(path.join(RESULTS, 'profiles'), { recursive: true, force: true })
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'onnx-sidecar-bench-'))
  const models = benchModels()
  const repo = path.join(tmp, 'repo')
  const config = 'max_batch_size: 32\ndynamic_batching: { max_queue_delay_microseconds: 0 }\nwarmup: true\n'
  const file = (m: SyntheticModel): string => path.join(repo, m.name, '1', 'model.onnx')
  for (const m of Object.values(models)) {
    await mkdir(path.dirname(file(m)), { recursive: true })
    await writeFile(file(m), m.bytes)
    await writeFile(path.join(repo, m.name, 'config.yaml'), config)
  }
  log(`models in ${repo}: ${Object.values(models).map(m => `${m.name} (${m.parameters.toLocaleString('en-US')} parameters, ${(m.bytes.byteLength / 1e6).toFixed(1)} MB)`).join(', ')}`)

  const small = models.small
  const big = models.big
  const bodies = {
    small: jsonBody(small, randomInput(32, 1)),
    big: jsonBody(big, randomInput(512, 2)),
    cnnJson: jsonBody(models.cnn, randomInput(784, 3)),
    cnnBin: binaryBody(models.cnn, randomInput(784, 3))
  }
  const smallBin = binaryBody(small, randomInput(32, 1))
  const smallBinHeaders = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(smallBin.headerLength) }
  const smallGrpc = grpcInferMessage(small, randomInput(32, 1))
  const cnnBinHeaders = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(bodies.cnnBin.headerLength) }
  const health = (origin: string): Target & { intervalMs: number } => ({ origin, path: '/v2/health/ready', method: 'GET', intervalMs: 5 })

  const raw: Record<string, unknown> = {}
  const ortRes: Record<string, OrtResult> = {}
  const cells: Record<string, Cell> = {}
  const rss: Array<{ workers: number, mib: number, anonMib: number, fileMib: number }> = []
  let swap: { swaps: number, loaded: number, result: CellResult, index: unknown } | undefined
  let footprint: {
    pinned: boolean
    rss: Record<string, { mib: number, anonMib: number, fileMib: number, byMapping: Record<string, number>, serving: string }>
    c1: Record<string, CellResult>
    idle?: { seconds: number, cpuPct: number }
    health?: CellResult
  } | undefined

  const gen = new LoadGenerator()
  try {
    if (ONLY.has('ort')) {
      for (const [key, m] of [['small', small], ['big', big], ['cnn', models.cnn]] as const) {
        for (const b of [1, 32]) {
          log(`in-process ORT ${m.name} batch ${b}`)
          ortRes[`${key}_b${b}`] = await ortCell(m, b)
        }
      }
    }

    if (ONLY.has('baselines')) {
      for (const kind of ['naive', 'noinfer'] as const) {
        const server = await startBaseline(kind, file(small))
        try {
          log(`${kind} server, ${small.name}, 64 connections`)
          cells[`${kind}_small_c64`] = await gen.run({ serverPid: server.child.pid, target: inferTarget(server.origin, small.name, bodies.small), connections: 64 })
          if (kind === 'naive') {
            log(`${kind} server, ${small.name}, 1 connection`)
            cells[`${kind}_small_c1`] = await gen.run({ serverPid: server.child.pid, target: inferTarget(server.origin, small.name, bodies.small), connections: 1 })
          }
        } finally { await server.stop() }
      }
      const naiveBig = await startBaseline('naive', file(big))
      try {
        log(`naive server, ${big.name}, 64 connections (+ health probe)`)
        cells.naive_big_c64 = await gen.run({ serverPid: naiveBig.child.pid, target: inferTarget(naiveBig.origin, big.name, bodies.big), connections: 64, probe: health(naiveBig.origin) })
      } finally { await naiveBig.stop() }
    }

    if (ONLY.has('sidecar')) {
      // One sidecar for every cell; with BENCH_PROFILE=1 a fresh one per cell, so that each
      // profile directory (bench/results/profiles/<cell>/) holds exactly one scenario.
      let shared: Awaited<ReturnType<typeof startSidecar>> | undefined
      const withSidecar = async (cell: string, fn: (sc: Server) => Promise<Cell>): Promise<void> => {
        if (PROFILE) {
          const sc = await startSidecar(repo, ['--poll-interval', '0'], { profileDir: path.join(RESULTS, 'profiles', cell) })
          try { cells[cell] = await fn(sc) } finally { await sc.stop() }
          return
        }
        shared ??= await startSidecar(repo, ['--poll-interval', '0'])
        cells[cell] = await fn(shared)
      }
      try {
        for (const c of [64, 8, 1]) {
          log(`sidecar, ${small.name}, ${c} connections`)
          await withSidecar(`sidecar_small_c${c}`, async sc => await meanBatch(sc.metricsOrigin, small.name, () => gen.run({ serverPid: sc.child.pid, target: inferTarget(sc.origin, small.name, bodies.small), connections: c })))
        }
        log(`sidecar, ${big.name}, 64 connections (+ health probe on the metrics port)`)
        await withSidecar('sidecar_big_c64', async sc => await meanBatch(sc.metricsOrigin, big.name, () => gen.run({ serverPid: sc.child.pid, target: inferTarget(sc.origin, big.name, bodies.big), connections: 64, probe: health(sc.metricsOrigin) })))
        log(`sidecar, ${models.cnn.name}, JSON, 64 connections`)
        await withSidecar('sidecar_cnn_json_c64', async sc => await meanBatch(sc.metricsOrigin, models.cnn.name, () => gen.run({ serverPid: sc.child.pid, target: inferTarget(sc.origin, models.cnn.name, bodies.cnnJson), connections: 64 })))
        log(`sidecar, ${models.cnn.name}, binary tensors, 64 connections`)
        await withSidecar('sidecar_cnn_bin_c64', async sc => await meanBatch(sc.metricsOrigin, models.cnn.name, () => gen.run({ serverPid: sc.child.pid, target: inferTarget(sc.origin, models.cnn.name, bodies.cnnBin.body, cnnBinHeaders), connections: 64 })))
      } finally { await shared?.stop() }
    }

    if (ONLY.has('transport')) {
      const sockDir = path.join(tmp, 'sock')
      const sc = await startSidecar(repo, ['--poll-interval', '0', '--socket-dir', sockDir])
      try {
        const rest = (body: Uint8Array, headers: Record<string, string>, socketPath?: string): Target => ({ ...inferTarget(sc.origin, small.name, body, headers), ...(socketPath !== undefined ? { socketPath } : {}) })
        const grpcTarget = (address: string): Target => ({ origin: sc.origin, path: '/inference.GRPCInferenceService/ModelInfer', method: 'POST', body: smallGrpc, grpc: { address } })
        const transports: Array<[string, Target]> = [
          ['rest_tcp_json', rest(bodies.small, JSON_HEADERS)],
          ['rest_uds_json', rest(bodies.small, JSON_HEADERS, sc.sockets?.http)],
          ['rest_tcp_bin', rest(smallBin.body, smallBinHeaders)],
          ['grpc_tcp', grpcTarget(sc.grpc as string)],
          ['grpc_uds', grpcTarget(`unix:${sc.sockets?.grpc as string}`)]
        ]
        // Short cells in rotation, three rounds, and the median round per cell: one slow
        // moment on the shared machine then shifts one sample, not one transport.
        const rounds: Record<string, CellResult[]> = {}
        for (let round = 1; round <= TRANSPORT_ROUNDS; round++) {
          for (const conn of [1, 16]) {
            for (const [name, target] of transports) {
              log(`transport round ${round}/${TRANSPORT_ROUNDS}: ${name}, ${small.name}, ${conn} connection(s)`)
              const r = await gen.run({ serverPid: sc.child.pid, target, connections: conn, durationS: TRANSPORT_DURATION_S })
              ;(rounds[`${name}_c${conn}`] ??= []).push(r)
            }
          }
        }
        for (const [key, results] of Object.entries(rounds)) {
          const byRps = [...results].sort((a, b) => a.rps - b.rps)
          cells[key] = byRps[Math.floor(byRps.length / 2)] as CellResult
        }
      } finally { await sc.stop() }
    }

    if (ONLY.has('rss')) {
      for (const workers of [1, 2, 3]) {
        const sc = await startSidecar(path.join(ROOT, 'models'), ['--model', 'iris', '--workers', String(workers), '--threads', '1'])
        try {
          await sleep(2000)
          const r = await rssOf(sc.child.pid as number)
          log(`idle RSS, iris, ${workers} worker(s): ${r.mib.toFixed(1)} MiB (anonymous ${r.anonMib.toFixed(1)}, file-backed ${r.fileMib.toFixed(1)})`)
          rss.push({ workers, ...r })
        } finally { await sc.stop() }
      }
    }

    if (ONLY.has('swap')) {
      const swapRepo = path.join(tmp, 'swap-repo')
      const name = 'swap'
      const write = async (version: number): Promise<void> => {
        // Atomic: a complete directory appears under its final name in one rename(2).
        const staging = path.join(swapRepo, name, `.incoming-${version}`)
        await mkdir(staging, { recursive: true })
        await writeFile(path.join(staging, 'model.onnx'), mlp(name, [32, 256, 256, 10], 100 + version).bytes)
        await rename(staging, path.join(swapRepo, name, String(version)))
      }
      await mkdir(path.join(swapRepo, name), { recursive: true })
      await writeFile(path.join(swapRepo, name, 'config.yaml'), config + 'version_policy: { latest: 1 }\n')
      await write(1)
      const sc = await startSidecar(swapRepo)
      try {
        log(`version swaps: ${SWAPS} new versions during ${SWAP_S} s of load at 32 connections`)
        const cell = gen.run({ serverPid: sc.child.pid, target: inferTarget(sc.origin, name, bodies.small), connections: 32, durationS: SWAP_S, trackVersions: true })
        await sleep(WARMUP_S * 1000)
        const every = SWAP_S * 1000 / SWAPS
        await sleep(every / 2)
        for (let v = 2; v <= SWAPS + 1; v++) {
          await write(v)
          if (v <= SWAPS) await sleep(every)
        }
        const result = await cell
        await sleep(1500)
        const res = await request(`${sc.origin}/v2/repository/index`, { method: 'POST' })
        const index = await res.body.json() as Array<{ name: string, version: string, state: string }>
        const loaded = Math.max(...index.filter(e => e.name === name && e.state === 'READY').map(e => Number(e.version)))
        swap = { swaps: SWAPS, loaded, result, index }
        log(`version swaps: ${result.errors} failed of ${result.ok + result.errors}; versions answered: ${JSON.stringify(result.versions)}; serving now: ${loaded}`)
      } finally { await sc.stop() }
    }
    if (ONLY.has('footprint')) {
      // One CPU each: the server under test on CPU 0, the load generator on CPU 1.
      const pinnedOk = await gen.pin('1')
      const cpu = pinnedOk ? '0' : undefined
      const irisRepo = path.join(ROOT, 'models')
      const irisBody = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] }))
      const c1Models: Array<[string, string, string, Uint8Array]> = [
        ['small', small.name, file(small), bodies.small],
        ['big', big.name, file(big), bodies.big],
        ['iris', 'iris', path.join(irisRepo, 'iris', '1', 'model.onnx'), irisBody]
      ]
      footprint = { pinned: pinnedOk, rss: {}, c1: {} }
      for (const [key, name, modelFile, body] of c1Models) {
        const naive = await startBaseline('naive', modelFile, cpu)
        try {
          log(`footprint: naive server, ${name}, 1 connection${pinnedOk ? ' (pinned to CPU 0)' : ''}`)
          footprint.c1[`naive_${key}`] = await gen.run({ serverPid: naive.child.pid, target: inferTarget(naive.origin, name, body), connections: 1 })
        } finally { await naive.stop() }
      }
      const serving = (sc: SidecarServer): string => {
        const line = sc.logs.find(l => l.includes('"onnx-sidecar serving"'))
        const rec = line === undefined ? {} : JSON.parse(line) as { workers?: number, threads?: number, inferenceThread?: string, cpus?: number }
        return `${rec.cpus ?? '?'} CPU: inference on the ${rec.inferenceThread === 'main' ? 'main thread' : `workers (${rec.workers ?? '?'})`}, ${rec.threads ?? '?'} thread(s)`
      }
      for (const [label, repoDir, args, cells1] of [
        ['three', repo, [], c1Models.slice(0, 2)],
        ['iris', irisRepo, ['--model', 'iris'], c1Models.slice(2)]
      ] as Array<[string, string, string[], typeof c1Models]>) {
        const sc = await startSidecar(repoDir, [...args, ...FOOTPRINT_ARGS], { cpu, defaultParallelism: true })
        try {
          await sleep(3000)
          const pid = sc.child.pid as number
          const r = await rssOf(pid)
          footprint.rss[label] = { ...r, byMapping: await rssByMapping(pid), serving: serving(sc) }
          log(`footprint: idle RSS, ${label}, default flags (${serving(sc)}): ${r.mib.toFixed(1)} MiB`)
          if (label === 'iris') {
            log(`footprint: idle CPU over ${IDLE_S} s (iris, repository polling on)`)
            const c0 = await cpuSeconds(pid)
            const t0 = Date.now()
            await sleep(IDLE_S * 1000)
            const wall = (Date.now() - t0) / 1000
            footprint.idle = { seconds: wall, cpuPct: (await cpuSeconds(pid) - c0) / wall * 100 }
          }
          for (const [key, name, , body] of cells1) {
            log(`footprint: sidecar (default flags), ${name}, 1 connection`)
            footprint.c1[`sidecar_${key}`] = await gen.run({ serverPid: pid, target: inferTarget(sc.origin, name, body), connections: 1 })
          }
          if (label === 'three') {
            // One CPU for everything: health must still answer from the metrics thread.
            log(`footprint: sidecar (default flags), ${big.name}, 64 connections (+ health probe on the metrics port)`)
            footprint.health = await gen.run({ serverPid: pid, target: inferTarget(sc.origin, big.name, bodies.big), connections: 64, probe: health(sc.metricsOrigin) })
          }
        } finally { await sc.stop() }
      }
    }
  } finally {
    await gen.close()
    await rm(tmp, { recursive: true, force: true })
  }

  // ---- figures ----
  const figures: Figure[] = []
  const add = (f: Figure): void => { figures.push(f) }
  const o = ortRes
  const c = cells
  const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : a / b)
  const ort1 = o.small_b1
  if (o.small_b1 !== undefined && o.small_b32 !== undefined) {
    add({ id: 'ort_small_b1', label: 'in-process ORT, small MLP, batch 1', value: o.small_b1.rowsPerS, unit: 'rows/s', note: `p50 ${fmt(o.small_b1.latency.p50)} µs per session.run` })
    add({ id: 'ort_small_b32', label: 'in-process ORT, small MLP, batch 32', value: o.small_b32.rowsPerS, unit: 'rows/s', baseline: 'ORT batch 1', ratio: ratio(o.small_b32.rowsPerS, o.small_b1.rowsPerS) })
  }
  if (o.big_b1 !== undefined && o.big_b32 !== undefined) {
    add({ id: 'ort_big_b1', label: 'in-process ORT, 5M MLP, batch 1', value: o.big_b1.rowsPerS, unit: 'rows/s', note: `p50 ${fmt(o.big_b1.latency.p50)} µs` })
    add({ id: 'ort_big_b32', label: 'in-process ORT, 5M MLP, batch 32', value: o.big_b32.rowsPerS, unit: 'rows/s', baseline: 'ORT batch 1', ratio: ratio(o.big_b32.rowsPerS, o.big_b1.rowsPerS) })
  }
  if (o.cnn_b1 !== undefined && o.cnn_b32 !== undefined) {
    add({ id: 'ort_cnn_b1', label: 'in-process ORT, CNN, batch 1', value: o.cnn_b1.rowsPerS, unit: 'rows/s', note: `p50 ${fmt(o.cnn_b1.latency.p50)} µs` })
    add({ id: 'ort_cnn_b32', label: 'in-process ORT, CNN, batch 32', value: o.cnn_b32.rowsPerS, unit: 'rows/s', baseline: 'ORT batch 1', ratio: ratio(o.cnn_b32.rowsPerS, o.cnn_b1.rowsPerS) })
  }
  const naive64 = c.naive_small_c64?.rps
  const noinfer64 = c.noinfer_small_c64?.rps
  if (c.naive_small_c64 !== undefined) add({ id: 'naive_small_c64', label: 'naive server, small MLP, 64 conn', value: c.naive_small_c64.rps, unit: 'req/s', baseline: 'ORT batch 1', ratio: ratio(c.naive_small_c64.rps, ort1?.rowsPerS) })
  if (c.noinfer_small_c64 !== undefined) add({ id: 'noinfer_small_c64', label: 'no-inference server, small MLP, 64 conn', value: c.noinfer_small_c64.rps, unit: 'req/s', baseline: 'naive server', ratio: ratio(noinfer64, naive64) })
  const sc64 = c.sidecar_small_c64
  if (sc64 !== undefined) {
    add({ id: 'sidecar_small_c64', label: 'sidecar, small MLP, 64 conn', value: sc64.rps, unit: 'req/s', baseline: 'naive server', ratio: ratio(sc64.rps, naive64), note: `mean batch ${fmt(sc64.meanBatchRows ?? NaN)} rows; errors ${sc64.errors}` })
    add({ id: 'sidecar_small_c64_vs_noinfer', label: 'sidecar, small MLP, 64 conn', value: sc64.rps, unit: 'req/s', baseline: 'no-inference server', ratio: ratio(sc64.rps, noinfer64) })
  }
  if (c.naive_big_c64 !== undefined) add({ id: 'naive_big_c64', label: 'naive server, 5M MLP, 64 conn', value: c.naive_big_c64.rps, unit: 'req/s', baseline: 'ORT 5M batch 1', ratio: ratio(c.naive_big_c64.rps, o.big_b1?.rowsPerS) })
  const big64 = c.sidecar_big_c64
  if (big64 !== undefined) add({ id: 'sidecar_big_c64', label: 'sidecar, 5M MLP, 64 conn', value: big64.rps, unit: 'req/s', baseline: 'naive server', ratio: ratio(big64.rps, c.naive_big_c64?.rps), note: `mean batch ${fmt(big64.meanBatchRows ?? NaN)} rows; errors ${big64.errors}` })
  if (ort1 !== undefined) add({ id: 'ort_small_b1_p50', label: 'in-process ORT session.run p50, small MLP', value: ort1.latency.p50, unit: 'µs', note: `p99 ${fmt(ort1.latency.p99)} µs` })
  if (c.naive_small_c1 !== undefined) {
    add({ id: 'naive_small_c1_p50', label: 'naive server p50, small MLP, 1 conn', value: c.naive_small_c1.latency.p50, unit: 'µs', baseline: 'ORT p50', ratio: ratio(c.naive_small_c1.latency.p50, ort1?.latency.p50), note: `p99 ${fmt(c.naive_small_c1.latency.p99)} µs; ${fmt(c.naive_small_c1.rps)} req/s` })
  }
  for (const n of [1, 8, 64]) {
    const cell = c[`sidecar_small_c${n}`]
    if (cell === undefined) continue
    add({ id: `sidecar_small_c${n}_p50`, label: `sidecar p50, small MLP JSON, ${n} conn`, value: cell.latency.p50, unit: 'µs', ...(n === 1 && ort1 !== undefined ? { baseline: 'ORT p50', ratio: ratio(cell.latency.p50, ort1.latency.p50), note: `+${fmt(cell.latency.p50 - ort1.latency.p50)} µs over ORT; ${fmt(cell.rps)} req/s` } : { note: `${fmt(cell.rps)} req/s` }) })
    add({ id: `sidecar_small_c${n}_p99`, label: `sidecar p99, small MLP JSON, ${n} conn`, value: cell.latency.p99, unit: 'µs' })
  }
  const cj = c.sidecar_cnn_json_c64
  const cb = c.sidecar_cnn_bin_c64
  if (cj !== undefined) add({ id: 'sidecar_cnn_json_c64', label: 'sidecar, CNN JSON, 64 conn', value: cj.rps, unit: 'req/s', baseline: 'ORT CNN batch 32', ratio: ratio(cj.rps, o.cnn_b32?.rowsPerS), note: `request ${(bodies.cnnJson.byteLength / 1024).toFixed(1)} KiB; mean batch ${fmt(cj.meanBatchRows ?? NaN)}` })
  if (cb !== undefined) add({ id: 'sidecar_cnn_bin_c64', label: 'sidecar, CNN binary tensors, 64 conn', value: cb.rps, unit: 'req/s', baseline: 'same requests in JSON', ratio: ratio(cb.rps, cj?.rps), note: `request ${(bodies.cnnBin.body.byteLength / 1024).toFixed(1)} KiB; mean batch ${fmt(cb.meanBatchRows ?? NaN)}` })
  const hp = big64?.probe
  const nhp = c.naive_big_c64?.probe
  if (nhp !== undefined) add({ id: 'naive_health_p99', label: 'naive server /v2/health/ready p99 under 5M load', value: nhp.p99 / 1000, unit: 'ms', note: `p50 ${fmt(nhp.p50 / 1000)} ms` })
  if (hp !== undefined) add({ id: 'sidecar_health_p99', label: 'sidecar /v2/health/ready p99 (metrics port) under 5M load', value: hp.p99 / 1000, unit: 'ms', baseline: 'naive server', ratio: ratio(hp.p99, nhp?.p99), note: `p50 ${fmt(hp.p50 / 1000)} ms; ${hp.count} probes, ${hp.errors} failed; main event-loop delay p99 ${fmt(big64?.eventLoopDelayMs?.p99 ?? NaN)} ms, max ${fmt(big64?.eventLoopDelayMs?.max ?? NaN)} ms` })
  const rss1 = rss.find(r => r.workers === 1)
  const rss3 = rss.find(r => r.workers === 3)
  const perWorker = rss1 !== undefined && rss3 !== undefined ? (rss3.mib - rss1.mib) / 2 : NaN
  if (rss1 !== undefined) {
    add({ id: 'rss_idle_1w', label: 'sidecar idle RSS, iris, 1 worker', value: rss1.mib, unit: 'MiB', note: `anonymous ${rss1.anonMib.toFixed(1)} + file-backed ${rss1.fileMib.toFixed(1)} (node binary, libonnxruntime); ${rss.map(r => `${r.workers}w ${r.mib.toFixed(1)}`).join(', ')}` })
    add({ id: 'rss_per_worker', label: 'RSS per extra worker', value: perWorker, unit: 'MiB', baseline: '1-worker RSS', ratio: perWorker / rss1.mib })
  }
  // Server CPU per request: far less sensitive to other load on the machine than req/s.
  const cpuRow = (id: string, label: string, cell: (CellResult | undefined), base?: { label: string, cell: CellResult | undefined }): void => {
    const cpu = cell?.cpu
    if (cpu === undefined) return
    const b = base?.cell?.cpu
    add({ id: `${id}_cpu`, label: `server CPU per request: ${label}`, value: cpu.processUsPerReq, unit: 'µs', ...(base !== undefined && b !== undefined ? { baseline: base.label, ratio: cpu.processUsPerReq / b.processUsPerReq } : {}), note: `main thread ${fmt(cpu.mainUsPerReq)} µs; ${cpu.processCores.toFixed(2)} cores busy (main ${cpu.mainCores.toFixed(2)})` })
  }
  cpuRow('naive_small_c64', 'naive, small MLP, 64 conn', c.naive_small_c64)
  cpuRow('noinfer_small_c64', 'no-inference, small MLP, 64 conn', c.noinfer_small_c64, { label: 'naive server', cell: c.naive_small_c64 })
  cpuRow('sidecar_small_c64', 'sidecar, small MLP, 64 conn', c.sidecar_small_c64, { label: 'naive server', cell: c.naive_small_c64 })
  cpuRow('sidecar_small_c1', 'sidecar, small MLP, 1 conn', c.sidecar_small_c1, { label: 'naive server', cell: c.naive_small_c1 })
  cpuRow('naive_big_c64', 'naive, 5M MLP, 64 conn', c.naive_big_c64)
  cpuRow('sidecar_big_c64', 'sidecar, 5M MLP, 64 conn', c.sidecar_big_c64, { label: 'naive server', cell: c.naive_big_c64 })
  cpuRow('sidecar_cnn_json_c64', 'sidecar, CNN JSON, 64 conn', c.sidecar_cnn_json_c64)
  cpuRow('sidecar_cnn_bin_c64', 'sidecar, CNN binary, 64 conn', c.sidecar_cnn_bin_c64, { label: 'CNN JSON', cell: c.sidecar_cnn_json_c64 })
  // Transports (issue 6): each against REST over TCP with the same tensor encoding.
  const transportBase: Record<string, [string, string]> = {
    rest_uds_json: ['REST JSON, TCP', 'rest_tcp_json'],
    rest_tcp_bin: ['REST JSON, TCP', 'rest_tcp_json'],
    grpc_tcp: ['REST binary, TCP', 'rest_tcp_bin'],
    grpc_uds: ['REST binary, TCP', 'rest_tcp_bin']
  }
  const transportLabel: Record<string, string> = {
    rest_tcp_json: 'REST JSON over TCP',
    rest_uds_json: 'REST JSON over the Unix socket',
    rest_tcp_bin: 'REST binary tensors over TCP',
    grpc_tcp: 'gRPC raw contents over TCP',
    grpc_uds: 'gRPC raw contents over the Unix socket'
  }
  for (const conn of [1, 16]) {
    for (const name of Object.keys(transportLabel)) {
      const cell = c[`${name}_c${conn}`]
      if (cell === undefined) continue
      const [baseLabel, baseName] = transportBase[name] ?? ['', '']
      const base = c[`${baseName}_c${conn}`]
      const label = `${transportLabel[name] as string}, small MLP, ${conn} conn`
      if (conn === 1) {
        add({ id: `${name}_c1_p50`, label: `p50: ${label}`, value: cell.latency.p50, unit: 'µs', ...(base !== undefined ? { baseline: baseLabel, ratio: ratio(cell.latency.p50, base.latency.p50) } : {}), note: `p99 ${fmt(cell.latency.p99)} µs; ${fmt(cell.rps)} req/s; errors ${cell.errors}` })
      } else {
        add({ id: `${name}_c${conn}`, label, value: cell.rps, unit: 'req/s', ...(base !== undefined ? { baseline: baseLabel, ratio: ratio(cell.rps, base.rps) } : {}), note: `p50 ${fmt(cell.latency.p50)} µs, p99 ${fmt(cell.latency.p99)} µs; errors ${cell.errors}` })
      }
      cpuRow(`${name}_c${conn}`, label, cell, base !== undefined && base !== cell ? { label: baseLabel, cell: base } : undefined)
    }
  }
  if (swap !== undefined) {
    add({ id: 'swap_failed', label: `failed requests, ${swap.swaps} version swaps in ${SWAP_S} s at 32 conn`, value: swap.result.errors, unit: '', note: `${swap.result.ok.toLocaleString('en-US')} ok (${fmt(swap.result.rps)} req/s), p99 ${fmt(swap.result.latency.p99)} µs; versions answered ${Object.keys(swap.result.versions ?? {}).length}; serving v${swap.loaded} at the end` })
  }

  const fp = footprint
  const c1Label: Record<string, string> = { small: 'small MLP', big: '5M MLP', iris: 'iris (max_queue_delay_microseconds 200)' }
  if (fp !== undefined) {
    for (const [label, what] of [['three', 'the three bench models'], ['iris', 'iris alone']] as const) {
      const r = fp.rss[label]
      if (r === undefined) continue
      const b = r.byMapping
      add({ id: `fp_rss_${label}`, label: `idle RSS, ${what}, default flags on 1 CPU`, value: r.mib, unit: 'MiB', note: `${r.serving}; node binary ${fmt(b.node ?? NaN)}, libonnxruntime ${fmt(b.onnxruntime ?? NaN)}, other files ${fmt(b.otherFiles ?? NaN)}, anonymous ${fmt(b.anonymous ?? NaN)} MiB` })
    }
    for (const key of ['small', 'big', 'iris']) {
      const sc = fp.c1[`sidecar_${key}`]
      const nv = fp.c1[`naive_${key}`]
      if (sc === undefined) continue
      add({ id: `fp_c1_${key}`, label: `1 CPU, ${c1Label[key] as string}, 1 conn`, value: sc.rps, unit: 'req/s', baseline: 'naive server', ratio: ratio(sc.rps, nv?.rps), note: `p50 ${fmt(sc.latency.p50)} µs, p99 ${fmt(sc.latency.p99)} µs (naive p50 ${fmt(nv?.latency.p50 ?? NaN)}, p99 ${fmt(nv?.latency.p99 ?? NaN)} µs); errors ${sc.errors}` })
    }
    if (fp.idle !== undefined) add({ id: 'fp_idle_cpu', label: `idle CPU, iris, ${fmt(fp.idle.seconds)} s`, value: fp.idle.cpuPct, unit: '% of a CPU' })
  }

  // ---- targets (issues 3 and 13) ----
  const checks: TargetCheck[] = []
  if (sc64 !== undefined && naive64 !== undefined && noinfer64 !== undefined) {
    const a = sc64.rps / naive64
    const b = sc64.rps / noinfer64
    checks.push({ target: 'small MLP, 64 conn: ≥ 1.5× naive server req/s', measured: `${fmt(sc64.rps)} vs ${fmt(naive64)} req/s = ${a.toFixed(2)}×`, pass: a >= 1.5 })
    checks.push({ target: 'small MLP, 64 conn: ≥ 0.8× no-inference server req/s', measured: `${fmt(sc64.rps)} vs ${fmt(noinfer64)} req/s = ${b.toFixed(2)}×`, pass: b >= 0.8 })
  }
  if (big64 !== undefined && c.naive_big_c64 !== undefined) {
    const a = big64.rps / c.naive_big_c64.rps
    checks.push({ target: '5M MLP, 64 conn: ≥ 3× naive server req/s', measured: `${fmt(big64.rps)} vs ${fmt(c.naive_big_c64.rps)} req/s = ${a.toFixed(2)}×`, pass: a >= 3 })
  }
  if (c.sidecar_small_c1 !== undefined && ort1 !== undefined) {
    const d = c.sidecar_small_c1.latency.p50 - ort1.latency.p50
    checks.push({ target: 'concurrency 1, small MLP JSON: p50 ≤ in-process session.run p50 + 100 µs', measured: `${fmt(c.sidecar_small_c1.latency.p50)} µs vs ${fmt(ort1.latency.p50)} µs = +${fmt(d)} µs`, pass: d <= 100 })
  }
  if (cj !== undefined && cb !== undefined) {
    const a = cb.rps / cj.rps
    checks.push({ target: 'CNN: binary tensors ≥ 1.5× JSON req/s', measured: `${fmt(cb.rps)} vs ${fmt(cj.rps)} req/s = ${a.toFixed(2)}×`, pass: a >= 1.5 })
  }
  if (hp !== undefined) {
    checks.push({ target: '/v2/health/ready p99 < 10 ms while the 5M model is saturated', measured: `${fmt(hp.p99 / 1000)} ms (${hp.count} probes, ${hp.errors} failed)`, pass: hp.p99 < 10_000 && hp.errors === 0 })
  }
  if (swap !== undefined) {
    checks.push({ target: `${swap.swaps} version swaps during ${SWAP_S} s at 32 conn: 0 failed requests`, measured: `${swap.result.errors} failed of ${(swap.result.ok + swap.result.errors).toLocaleString('en-US')}; serving v${swap.loaded} of v${swap.swaps + 1}`, pass: swap.result.errors === 0 && swap.loaded === swap.swaps + 1 })
  }
  if (rss1 !== undefined) {
    checks.push({ target: 'idle RSS, 1 worker, iris ≤ 100 MiB (report per extra worker)', measured: `${rss1.mib.toFixed(1)} MiB; +${perWorker.toFixed(1)} MiB per extra worker`, pass: rss1.mib <= 100 })
  }

  // Issue 13: footprint, one CPU for the server.
  if (fp !== undefined) {
    const three = fp.rss.three
    const iris = fp.rss.iris
    if (three !== undefined) checks.push({ target: 'idle RSS, the three bench models, default flags on 1 CPU ≤ 100 MiB', measured: `${three.mib.toFixed(1)} MiB`, pass: three.mib <= 100 })
    if (iris !== undefined) checks.push({ target: 'idle RSS, iris alone, default flags on 1 CPU ≤ 80 MiB', measured: `${iris.mib.toFixed(1)} MiB`, pass: iris.mib <= 80 })
    for (const key of ['small', 'big', 'iris']) {
      const sc = fp.c1[`sidecar_${key}`]
      const nv = fp.c1[`naive_${key}`]
      if (sc === undefined || nv === undefined) continue
      const r = sc.rps / nv.rps
      const p = sc.latency.p99 / nv.latency.p99
      checks.push({ target: `1 CPU, ${c1Label[key] as string}, 1 conn: req/s ≥ naive server's, p99 ≤ 1.5× its p99`, measured: `${fmt(sc.rps)} vs ${fmt(nv.rps)} req/s = ${r.toFixed(2)}×; p99 ${fmt(sc.latency.p99)} vs ${fmt(nv.latency.p99)} µs = ${p.toFixed(2)}×; errors ${sc.errors}`, pass: r >= 1 && p <= 1.5 && sc.errors === 0 })
    }
    const fh = fp.health
    if (fh?.probe !== undefined) checks.push({ target: '1 CPU, default flags: /v2/health/ready p99 < 10 ms while the 5M model is saturated (64 conn)', measured: `${fmt(fh.probe.p99 / 1000)} ms (${fh.probe.count} probes, ${fh.probe.errors} failed; ${fmt(fh.rps)} req/s, ${fh.errors} errors)`, pass: fh.probe.p99 < 10_000 && fh.probe.errors === 0 })
    if (fp.idle !== undefined) checks.push({ target: `idle CPU (iris, repository polling on) < 0.5 % of a CPU over ${fmt(fp.idle.seconds)} s`, measured: `${fp.idle.cpuPct.toFixed(2)} %`, pass: fp.idle.cpuPct < 0.5 })
  }
  for (const conn of [1, 16]) {
    const g = c[`grpc_tcp_c${conn}`]?.cpu
    const b = c[`rest_tcp_bin_c${conn}`]?.cpu
    if (g === undefined || b === undefined) continue
    const r = g.processUsPerReq / b.processUsPerReq
    checks.push({ target: `gRPC server CPU per request ≤ REST binary tensors, small MLP, ${conn} conn`, measured: `${fmt(g.processUsPerReq)} vs ${fmt(b.processUsPerReq)} µs = ${r.toFixed(2)}×`, pass: r <= 1 })
  }

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
  raw.ort = ortRes
  raw.cells = cells
  raw.rss = rss
  raw.swap = swap
  raw.footprint = footprint
  await writeFile(path.join(RESULTS, 'latest.json'), JSON.stringify({ meta, figures, targets: checks, raw }, null, 2) + '\n')
  const md = markdown(figures, checks, meta)
  await writeFile(path.join(RESULTS, 'latest.md'), md)

  process.stdout.write(`\nonnx-sidecar benchmark — ${meta.machine}; load average ${os.loadavg().map(l => l.toFixed(2)).join(' ')}\n\n`)
  process.stdout.write(table(figures) + '\n\nTargets (issues 3 and 13):\n')
  for (const ch of checks) process.stdout.write(`  ${ch.pass ? 'PASS' : 'FAIL'}  ${ch.target} — ${ch.measured}\n`)
  process.stdout.write(`\nwrote ${path.relative(ROOT, path.join(RESULTS, 'latest.json'))} and ${path.relative(ROOT, path.join(RESULTS, 'latest.md'))} (${meta.wallS.toFixed(0)} s)\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
