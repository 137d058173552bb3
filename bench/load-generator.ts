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
import { Pool } from 'undici'
import { stats, type LatencyStats } from './stats.js'

export interface Target {
  origin: string
  path: string
  method: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: Uint8Array
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
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const VERSION_RE = /"model_version":"(\d+)"/

async function runCell (spec: CellSpec): Promise<CellResult> {
  const { target } = spec
  const pool = new Pool(target.origin, { connections: spec.connections, pipelining: 1, keepAliveTimeout: 60_000 })
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
        const res = await pool.request({ path: target.path, method: target.method, headers: target.headers, body: target.body })
        const body = spec.trackVersions === true ? await res.body.text() : await res.body.arrayBuffer()
        const us = Number(process.hrtime.bigint() - t0) / 1000
        if (!recording) continue
        if (res.statusCode === 200) {
          ok++
          latencies.push(us)
          statuses['200'] = (statuses['200'] ?? 0) + 1
          if (typeof body === 'string') {
            const v = VERSION_RE.exec(body)?.[1] ?? '?'
            versions[v] = (versions[v] ?? 0) + 1
          }
        } else {
          fail(String(res.statusCode))
          if (errorSamples.length < 5) errorSamples.push(`${res.statusCode} ${typeof body === 'string' ? body : Buffer.from(body).toString('utf8')}`.slice(0, 300))
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
  const started = process.hrtime.bigint()
  await sleep(spec.durationS * 1000)
  recording = false
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
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
    ...(spec.trackVersions === true ? { versions } : {})
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
