/**
 * Assembles a sidecar from its parts (worker pool, model manager, metrics, tracing and
 * the two HTTP servers) without listening. `serve-command.ts` listens and handles
 * signals; tests build one in-process and talk to it over HTTP.
 */
import type { AddressInfo } from 'node:net'
import type { Tracer } from '@opentelemetry/api'
import type { Logger } from '../common/logger.js'
import { buildInferenceApp, type InferenceApp } from './http/app.js'
import { MetricsServer } from './http/metrics-app.js'
import { createSidecarMetrics, type SidecarMetrics } from './metrics.js'
import { ModelManager, type AssignedModel } from './model-manager.js'
import { WorkerPool } from './runtime/worker-pool.js'
import type http from 'node:http'

export interface SidecarOptions {
  repository: string
  models?: AssignedModel[]
  workers: number
  threads: number
  bodyLimit: number
  pollIntervalMs: number
  watch: boolean
  logger: Logger
  /** OpenTelemetry tracer; leave undefined when tracing is off. */
  tracer?: Tracer
  version?: string
  /** Run models whose full batch computes within this many µs on the main thread; 0: never (default). */
  inlineComputeUs?: number
  defaultMetrics?: boolean
}

export interface Sidecar {
  manager: ModelManager
  metrics: SidecarMetrics
  pool: WorkerPool
  inference: InferenceApp
  metricsServer: MetricsServer
  /** Loads the models (the servers answer "not ready" meanwhile if already listening). */
  start: () => Promise<void>
  /** Stops taking requests, lets in-flight ones finish (up to graceMs), then frees everything. */
  close: (graceMs?: number) => Promise<void>
  shuttingDown: () => boolean
}

export function createSidecar (opts: SidecarOptions): Sidecar {
  let shutting = false
  const metrics = createSidecarMetrics({ defaultMetrics: opts.defaultMetrics })
  const pool = new WorkerPool({ workers: opts.workers, threads: opts.threads, logger: opts.logger })
  const manager = new ModelManager({
    repository: opts.repository,
    assigned: opts.models,
    pool,
    logger: opts.logger,
    metrics,
    pollIntervalMs: opts.pollIntervalMs,
    watch: opts.watch,
    onChange: () => metricsServer.refresh(),
    inlineComputeUs: opts.inlineComputeUs ?? 0
  })
  const isShuttingDown = (): boolean => shutting
  const inference = buildInferenceApp({
    manager,
    metrics,
    logger: opts.logger,
    tracer: opts.tracer,
    bodyLimit: opts.bodyLimit,
    isShuttingDown,
    version: opts.version ?? '0.0.0'
  })
  const metricsServer = new MetricsServer({ registry: metrics.registry, manager, isShuttingDown })

  return {
    manager,
    metrics,
    pool,
    inference,
    metricsServer,
    start: async () => {
      await manager.start()
      metricsServer.refresh()
    },
    shuttingDown: isShuttingDown,
    close: async (graceMs = 20_000) => {
      shutting = true
      metricsServer.refresh() // probes see "not ready" at once
      const closed = (server: http.Server): Promise<void> => new Promise(resolve => {
        if (!server.listening) return resolve()
        server.close(() => resolve())
        server.closeIdleConnections()
      })
      const inferenceClosed = Promise.all([closed(inference.server), closed(inference.socketServer)])
      // In-flight requests finish; keep-alive sockets close as soon as they go idle.
      const drained = inference.idle().then(() => {
        inference.server.closeIdleConnections()
        inference.socketServer.closeIdleConnections()
      })
      const timer = new Promise<void>(resolve => setTimeout(resolve, graceMs).unref())
      await Promise.race([Promise.all([inferenceClosed, drained]), timer])
      inference.server.closeAllConnections()
      inference.socketServer.closeAllConnections()
      await manager.close()
      await pool.close()
      await metricsServer.close()
    }
  }
}

export function portOf (server: http.Server): number {
  return (server.address() as AddressInfo).port
}

/**
 * Serves the inference API on a Unix domain socket as well: no TCP stack, and access is
 * whatever the file's permissions allow (0660: the sidecar's user and group, which a
 * pod's `fsGroup` shares with its app containers). A stale socket file is replaced.
 */
export async function listenOnSocket (sidecar: Sidecar, dir: string): Promise<string> {
  const { mkdir, chmod, lstat, unlink } = await import('node:fs/promises')
  const path = await import('node:path')
  await mkdir(dir, { recursive: true })
  const file = path.join(dir, SOCKET_NAME)
  const st = await lstat(file).catch(() => undefined)
  if (st !== undefined) {
    if (!st.isSocket()) throw new Error(`${file} exists and is not a socket`)
    await unlink(file)
  }
  const server = sidecar.inference.socketServer
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(file, () => { server.off('error', reject); resolve() })
  })
  await chmod(file, 0o660)
  return file
}

export const SOCKET_NAME = 'http.sock'
