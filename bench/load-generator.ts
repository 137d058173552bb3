/**
 * The benchmark's load generator. It runs as its own process (forked by bench/run.ts
 * with `--import tsx` and advanced IPC serialisation), so the client's CPU time never
 * shares an event loop with the server under test.
 *
 * Closed loop: `connections` virtual users each send a request, wait for the full
 * response, and send the next, over an undici Pool with that many keep-alive
 * connections. A warm-up period is run first and not recorded. Latencies are taken
 * with process.hrtime and kept in full, so percentiles are exact.
 *
 * Optionally a probe (e.g. GET /v2/health/ready on the metrics port) runs beside the
 * load on its own connection at a fixed interval and is reported separately.
 *
 * Protocol: the parent sends a `CellSpec`, the child answers with a `CellResult`;
 * `{ op: 'exit' }` ends the process.
 */
import { readFileSync } from 'node:fs'
import * as grpc from '@grpc/grpc-js'
import { Pool } from 'undici'
import { stats, type LatencyStats } from './stats.js'

export interface Target {
  origin: string
  path: string
  method: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: Uint8Array
  /** Connect to this Unix domain socket instead of the origin's host and port. */
  socketPath?: string
  /**
   * Send gRPC unary calls instead of HTTP requests: `body` is the serialized request
   * message, `path` the method (`/inference.GRPCInferenceService/ModelInfer`), `address`
   * what grpc-js dials (`127.0.0.1:8501` or `unix:/path`). One channel (one HTTP/2
   * connection) carries every virtual user's calls, as gRPC clients usually do.
   */
  grpc?: { address: string }
}

export interface CellSpec {
  op: 'cell'
  target: Target
  connections: number
  warmupS: number
  durationS: number
  probe?: Target & { intervalMs: number }
  /** Count the `model_version` of each 200 answer (version-swap test). */
  trackVersions?: boolean
  /** The server's pid: its CPU time over the recorded window is reported (Linux /proc). */
  serverPid?: number
}

/** CPU time the server spent over the recorded window, per successful request. */
export interface ServerCpu {
  /** All threads (main, inference workers, ORT, libuv), µs of CPU per request. */
  processUsPerReq: number
  /** The main (event-loop) thread alone, µs of CPU per request. */
  mainUsPerReq: number
  /** CPU utilisation over the window (1 = one core busy). */
  processCores: number
  mainCores: number
}

export interface CellResult {
  ok: number
  errors: number
  /** HTTP status (or error code) → count, over the recorded window. */
  statuses: Record<string, number>
  errorSamples: string[]
  seconds: number
  rps: number
  latency: LatencyStats
  probe?: LatencyStats & { errors: number }
  versions?: Record<string, number>
  cpu?: ServerCpu
}

const CLK_TCK = 100 // USER_HZ: 100 on every mainstream Linux build

/** utime + stime of a process or thread, in µs; undefined when /proc is not there. */
function cpuUs (file: string): number | undefined {
  try {
    const text = readFileSync(file, 'utf8')
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) * 1e6 / CLK_TCK
  } catch {
    return undefined
  }
}

function sampleCpu (pid: number | undefined): { proc: number, main: number } | undefined {
  if (pid === undefined) return undefined
  const proc = cpuUs(`/proc/${pid}/stat`)
  const main = cpuUs(`/proc/${pid}/task/${pid}/stat`)
  return proc === undefined || main === undefined ? undefined : { proc, main }
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const VERSION_RE = /"model_version":"(\d+)"/

interface Reply { status: string, body: string | ArrayBuffer }

/** One way to send the target's request: undici over TCP or a Unix socket, or grpc-js. */
function sender (target: Target, connections: number, asText: boolean): { send: () => Promise<Reply>, close: () => Promise<void> } {
  if (target.grpc !== undefined) {
    const client = new grpc.Client(target.grpc.address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 })
    const message = Buffer.from(target.body ?? new Uint8Array(0))
    const identity = (b: Buffer): Buffer => b
    const send = (): Promise<Reply> => new Promise(resolve => {
      client.makeUnaryRequest(target.path, identity, identity, message, (err, res) => {
        if (err === null) resolve({ status: '200', body: (res as Buffer).buffer as ArrayBuffer })
        else resolve({ status: grpc.status[err.code] ?? String(err.code), body: err.details })
      })
    })
    return { send, close: async () => { client.close() } }
  }
  const pool = new Pool(target.origin, { connections, pipelining: 1, keepAliveTimeout: 60_000, ...(target.socketPath !== undefined ? { socketPath: target.socketPath } : {}) })
  const send = async (): Promise<Reply> => {
    const res = await pool.request({ path: target.path, method: target.method, headers: target.headers, body: target.body })
    const body = asText ? await res.body.text() : await res.body.arrayBuffer()
    return { status: String(res.statusCode), body }
  }
  return { send, close: async () => { await pool.close() } }
}

async function runCell (spec: CellSpec): Promise<CellResult> {
  const { target } = spec
  const pool = sender(target, spec.connections, spec.trackVersions === true)
  const latencies: number[] = []
  const statuses: Record<string, number> = {}
  const errorSamples: string[] = []
  const versions: Record<string, number> = {}
  let ok = 0
  let errors = 0
  let recording = false
  let stop = false

  const fail = (what: string): void => {
    if (!recording) return
    errors++
    statuses[what] = (statuses[what] ?? 0) + 1
  }

  const user = async (): Promise<void> => {
    while (!stop) {
      const t0 = process.hrtime.bigint()
      try {
        const res = await pool.send()
        const body = res.body
        const us = Number(process.hrtime.bigint() - t0) / 1000
        if (!recording) continue
        if (res.status === '200') {
          ok++
          latencies.push(us)
          statuses['200'] = (statuses['200'] ?? 0) + 1
          if (typeof body === 'string') {
            const v = VERSION_RE.exec(body)?.[1] ?? '?'
            versions[v] = (versions[v] ?? 0) + 1
          }
        } else {
          fail(res.status)
          if (errorSamples.length < 5) errorSamples.push(`${res.status} ${typeof body === 'string' ? body : Buffer.from(body).toString('utf8')}`.slice(0, 300))
        }
      } catch (err) {
        fail((err as NodeJS.ErrnoException).code ?? (err as Error).name)
        if (recording && errorSamples.length < 5) errorSamples.push(String((err as Error).message).slice(0, 300))
      }
    }
  }

  let probeResult: Promise<LatencyStats & { errors: number }> | undefined
  if (spec.probe !== undefined) {
    const probe = spec.probe
    probeResult = (async () => {
      const probePool = new Pool(probe.origin, { connections: 1, pipelining: 1 })
      const samples: number[] = []
      let probeErrors = 0
      while (!stop) {
        const t0 = process.hrtime.bigint()
        try {
          const res = await probePool.request({ path: probe.path, method: probe.method, headers: probe.headers, body: probe.body })
          await res.body.arrayBuffer()
          if (recording) {
            if (res.statusCode === 200) samples.push(Number(process.hrtime.bigint() - t0) / 1000)
            else probeErrors++
          }
        } catch {
          if (recording) probeErrors++
        }
        await sleep(probe.intervalMs)
      }
      await probePool.close()
      return { ...stats(samples), errors: probeErrors }
    })()
  }

  const users = Array.from({ length: spec.connections }, user)
  await sleep(spec.warmupS * 1000)
  recording = true
  const cpu0 = sampleCpu(spec.serverPid)
  const started = process.hrtime.bigint()
  await sleep(spec.durationS * 1000)
  recording = false
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const cpu1 = sampleCpu(spec.serverPid)
  const cpu: ServerCpu | undefined = cpu0 === undefined || cpu1 === undefined
    ? undefined
    : { processUsPerReq: (cpu1.proc - cpu0.proc) / Math.max(1, ok), mainUsPerReq: (cpu1.main - cpu0.main) / Math.max(1, ok), processCores: (cpu1.proc - cpu0.proc) / 1e6 / seconds, mainCores: (cpu1.main - cpu0.main) / 1e6 / seconds }
  stop = true
  await Promise.all(users)
  const probe = await probeResult
  await pool.close()
  return {
    ok,
    errors,
    statuses,
    errorSamples,
    seconds,
    rps: ok / seconds,
    latency: stats(latencies),
    ...(probe !== undefined ? { probe } : {}),
    ...(spec.trackVersions === true ? { versions } : {}),
    ...(cpu !== undefined ? { cpu } : {})
  }
}

if (process.send !== undefined) {
  process.on('message', (msg: CellSpec | { op: 'exit' }) => {
    if (msg.op === 'exit') {
      process.disconnect()
      return
    }
    runCell(msg).then(result => process.send?.({ ok: true, result }), (err: unknown) => process.send?.({ ok: false, error: String((err as Error).stack ?? err) }))
  })
  process.send({ ready: true })
}
