/**
 * The processes of `npm run bench` and what it reads from them: the load generator
 * (bench/load-generator.ts, its own process), the servers under test (the baselines and the
 * sidecar), their /metrics, and their memory and CPU from /proc.
 */
import { fork, spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { once } from 'node:events'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { request } from 'undici'
import type { CellResult, CellSpec } from './load-generator.js'
import { ROOT, WARMUP_S, DURATION_S, THREADS, WORKERS, SIDECAR_CLI } from './env.js'
import { parseProcStatus, type MemorySample } from './memory-stats.js'

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
export const log = (msg: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }

// ---- the load generator process --------------------------------------------------------

export class LoadGenerator {
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

export interface Server {
  child: ChildProcess
  origin: string
  /** Where /v2/health/ready and /metrics answer (the sidecar's metrics port). */
  metricsOrigin: string
  stop: () => Promise<void>
}

export function pinProcess (pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Runs `argv` on CPU `cpu` when taskset is there and the machine has more than one CPU. */
export function pinned (cpu: string | undefined, argv: string[]): [string, string[]] {
  if (cpu === undefined || os.availableParallelism() < 2) return [argv[0] as string, argv.slice(1)]
  try { execFileSync('taskset', ['-V'], { stdio: 'ignore' }) } catch { return [argv[0] as string, argv.slice(1)] }
  return ['taskset', ['-c', cpu, ...argv]]
}

export async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}

export async function startBaseline (kind: 'naive' | 'noinfer', modelFile: string, cpu?: string): Promise<Server> {
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

export interface SidecarServer extends Server {
  logs: string[]
  /** host:port of the gRPC listener; undefined with --grpc-port off. */
  grpc?: string
  /** With --socket-dir: the REST and gRPC socket files. */
  sockets?: { http: string, grpc?: string }
}

export async function startSidecar (repo: string, args: string[] = [], opts: { profileDir?: string, cpu?: string, defaultParallelism?: boolean, env?: Record<string, string> } = {}): Promise<SidecarServer> {
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
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTEL_TRACES_EXPORTER: 'none', OTEL_SDK_DISABLED: 'true', ...opts.env } })
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
export function batchSizes (text: string): Record<string, { sum: number, count: number }> {
  const out: Record<string, { sum: number, count: number }> = {}
  for (const m of text.matchAll(/^onnx_sidecar_inference_batch_size_(sum|count)\{[^}]*model="([^"]+)"[^}]*\} ([0-9.e+-]+)$/gm)) {
    const [, kind, model, value] = m as unknown as [string, 'sum' | 'count', string, string]
    const e = out[model] ?? (out[model] = { sum: 0, count: 0 })
    e[kind] += Number(value)
  }
  return out
}

export const scrape = async (metricsOrigin: string): Promise<string> => await (await request(`${metricsOrigin}/metrics`)).body.text()
export const gauge = (text: string, name: string): number => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN)

/**
 * Runs a cell and adds, from the sidecar's /metrics, the mean executed batch size and the
 * main thread's event-loop delay over the cell (prom-client resets its event-loop
 * histogram at each scrape, so the scrape before the cell starts a fresh window).
 */
export async function meanBatch (metricsOrigin: string, model: string, cell: () => Promise<CellResult>): Promise<Cell> {
  const before = batchSizes(await scrape(metricsOrigin))[model] ?? { sum: 0, count: 0 }
  const result = await cell()
  const text = await scrape(metricsOrigin)
  const after = batchSizes(text)[model] ?? { sum: 0, count: 0 }
  const p99 = gauge(text, 'nodejs_eventloop_lag_p99_seconds') * 1000
  const max = gauge(text, 'nodejs_eventloop_lag_max_seconds') * 1000
  return { ...result, meanBatchRows: (after.sum - before.sum) / Math.max(1, after.count - before.count), ...(Number.isFinite(p99) ? { eventLoopDelayMs: { p99, max } } : {}) }
}

export type Cell = CellResult & { meanBatchRows?: number, eventLoopDelayMs?: { p99: number, max: number } }

/** Resident MiB per mapping kind (the node binary, libonnxruntime, other files, anonymous), from /proc/PID/smaps. */
export async function rssByMapping (pid: number): Promise<Record<string, number>> {
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
export async function cpuSeconds (pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8')
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

/** VmRSS, and its anonymous and file-backed parts (node binary, libonnxruntime), from /proc/PID/status. */
export async function rssOf (pid: number): Promise<{ mib: number, anonMib: number, fileMib: number }> {
  const m = await memoryOf(pid)
  return { mib: m.rssMib, anonMib: m.anonMib, fileMib: m.fileMib }
}

/** /proc/PID/status's resident figures (bench/memory-stats.ts). */
export async function memoryOf (pid: number): Promise<MemorySample> {
  return parseProcStatus(await readFile(`/proc/${pid}/status`, 'utf8'))
}
