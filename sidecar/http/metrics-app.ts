/**
 * The metrics and health server (default [::]:9464, IPv4 and IPv6): `/metrics` for
 * Prometheus and `/v2/health/{live,ready}` for kubelet probes. It carries no inference
 * and no model data, which is why it is the only listener allowed off loopback.
 *
 * The listener lives in its own worker thread (metrics-worker.ts) so probes answer in
 * microseconds even while the main thread is saturated; this side keeps the shared
 * readiness flag current, stamps the heartbeat that tells the worker the main thread
 * still runs, and answers the worker's `/metrics` requests from the registry. The worker
 * asks for at most one render at a time and reuses it for `scrapeCacheMs` (1 second by
 * default), so a flood of scrapes costs this thread at most one render per second.
 */
import { Worker } from 'node:worker_threads'
import { workerScript } from '../../common/worker-script.js'
import { SERVE_DEFAULTS } from '../../common/serve-options.js'
import type { Registry } from 'prom-client'
import { sidecarReady, type ReadinessFacts } from '../inference/metadata.js'

const workerUrl = workerScript(import.meta.url, 'metrics-worker')

const REFRESH_MS = 100 // readiness flag and heartbeat refresh period (0.1 seconds)
export const DEFAULT_LIVENESS_TIMEOUT_MS = SERVE_DEFAULTS.livenessTimeout // 10 seconds without a heartbeat: not live (--liveness-timeout)
export const DEFAULT_SCRAPE_CACHE_MS = 1000 // a render answers every scrape for 1 second after it
const MAX_HEARTBEAT_MS = 1000 // the heartbeat's longest period (1 second)
const TERMINATE_AFTER_MS = 2000 // close() terminates a listener thread that has not exited within 2 seconds

export interface MetricsListenOptions {
  /** Probes answer 503 once the main thread has not stamped its heartbeat for this long; 0: never. */
  livenessTimeoutMs?: number
  /** A rendered `/metrics` text answers every scrape for this long (ms); 0: each scrape past the render in flight renders again. */
  scrapeCacheMs?: number
}

/** A tenth of the liveness timeout (1 s at the default 10 s), within 0.1-1 s: an idle sidecar wakes once a second for it. */
export function heartbeatPeriodMs (livenessTimeoutMs: number): number {
  return Math.min(MAX_HEARTBEAT_MS, Math.max(REFRESH_MS, livenessTimeoutMs > 0 ? livenessTimeoutMs / 10 : MAX_HEARTBEAT_MS))
}

/** Readiness (published to the listener thread) is the same as on REST and gRPC: `sidecarReady`. */
export interface MetricsServerDeps extends ReadinessFacts {
  registry: Registry
}

export class MetricsServer {
  #deps: MetricsServerDeps
  #shared = new SharedArrayBuffer(16)
  #flags = new Int32Array(this.#shared, 0, 1)
  #heartbeat = new BigInt64Array(this.#shared, 8, 1)
  #worker: Worker | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (deps: MetricsServerDeps) {
    this.#deps = deps
  }

  /**
   * Publishes readiness and a heartbeat to the listener thread now (also done every 0.1-1 s:
   * the same timer, so liveness costs no extra wake-up).
   */
  refresh (): void {
    Atomics.store(this.#flags, 0, sidecarReady(this.#deps) ? 1 : 0)
    Atomics.store(this.#heartbeat, 0, process.hrtime.bigint())
  }

  async listen (port: number, host: string, opts: MetricsListenOptions = {}): Promise<number> {
    this.refresh()
    const livenessTimeoutMs = opts.livenessTimeoutMs ?? DEFAULT_LIVENESS_TIMEOUT_MS
    const scrapeCacheMs = opts.scrapeCacheMs ?? DEFAULT_SCRAPE_CACHE_MS
    const worker = new Worker(workerUrl, { name: 'metrics', workerData: { host, port, flags: this.#shared, livenessTimeoutMs, scrapeCacheMs } })
    this.#worker = worker
    worker.on('message', (msg: { type: string }) => {
      if (msg.type !== 'metrics') return
      this.#deps.registry.metrics().then(
        text => worker.postMessage({ type: 'metrics', ok: true, text, contentType: this.#deps.registry.contentType }),
        (err: Error) => worker.postMessage({ type: 'metrics', ok: false, text: err.message, contentType: '' })
      )
    })
    const bound = await new Promise<number>((resolve, reject) => {
      const onMessage = (msg: { type: string, port?: number, message?: string }): void => {
        if (msg.type === 'listening') { worker.off('message', onMessage); resolve(msg.port as number) }
        if (msg.type === 'error') { worker.off('message', onMessage); void worker.terminate(); reject(new Error(`metrics server on ${host}:${port}: ${msg.message ?? ''}`)) }
      }
      worker.on('message', onMessage)
      worker.once('error', reject)
    })
    this.#timer = setInterval(() => this.refresh(), heartbeatPeriodMs(livenessTimeoutMs))
    this.#timer.unref()
    return bound
  }

  async close (): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    const worker = this.#worker
    this.#worker = undefined
    if (worker === undefined) return
    const exited = new Promise<void>(resolve => worker.once('exit', () => resolve()))
    worker.postMessage({ type: 'close' })
    const timeout = setTimeout(() => { void worker.terminate() }, TERMINATE_AFTER_MS)
    await exited
    clearTimeout(timeout)
  }
}
