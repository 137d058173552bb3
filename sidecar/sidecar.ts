/**
 * Assembles a sidecar from its parts (worker pool, model manager, metrics, tracing and
 * the two HTTP servers) without listening. `serve-command.ts` listens and handles
 * signals; tests build one in-process and talk to it over HTTP.
 */
import type { AddressInfo } from 'node:net'
import type { Tracer } from '@opentelemetry/api'
import type { Logger } from '../common/logger.js'
import type { FleetCandidate } from '../common/contract.js'
import { close as closeServer, listenOnPath } from '../common/http.js'
import { GRPC_SOCKET_NAME, HTTP_SOCKET_NAME } from '../common/sockets.js'
import { DEFAULT_MEMORY_BUDGET, requestLimits } from '../common/memory-limit.js'
import { SERVE_DEFAULTS } from '../common/serve-options.js'
import { buildRestApp, type RestApp } from './http/app.js'
import { MetricsServer } from './http/metrics-app.js'
import { GrpcServer } from './grpc/server.js'
import { H2GrpcServer } from './grpc/h2/server.js'
import { InferenceDispatcher } from './inference/dispatcher.js'
import { createSidecarMetrics, trackRequestMemory } from './core/metrics.js'
import { ModelManager, type AssignedModel } from './models/model-manager.js'
import { InferenceObserver } from './inference/observation.js'
import { RolloutObserver } from './inference/rollout-observation.js'
import { RequestMemory } from './codec/request-memory.js'
import { createRolloutMetrics } from './rollout/metrics.js'
import { Rollouts } from './rollout/rollouts.js'
import { WorkerPool } from './runtime/worker-pool.js'
import { SharedMemoryRegions } from './shm/regions.js'
import { warmUp, WarmupState } from './http/warmup.js'
import { warmupTargets } from './inference/warmup-plan.js'
import type { ModelSignature } from './models/signature.js'
import type http from 'node:http'

export interface SidecarOptions {
  repository: string
  models?: AssignedModel[]
  /** `--candidate` / `--canary`: a rollout of one model that the fleet decides (the pod measures). */
  fleet?: FleetCandidate
  workers: number
  threads: number
  /** Run ONNX Runtime on the main thread (runtime/main-thread-slot.ts) instead of `workers` threads. */
  inProcess?: boolean
  bodyLimit: number
  /**
   * Bytes that requests in flight may hold at once (`--request-memory`); default what
   * serve derives from the default memory budget (common/memory-limit.ts requestLimits:
   * 512 MiB / 4 = 128 MiB).
   */
  requestMemory?: number
  pollIntervalMs: number
  watch: boolean
  logger: Logger
  /** Log lines the logger has dropped so far (createLogger's onDrop), for onnx_sidecar_log_dropped_total. */
  logDropped?: () => number
  /** OpenTelemetry tracer; leave undefined when tracing is off. */
  tracer?: Tracer
  version?: string
  /** Run models whose full batch computes within this many µs on the main thread; 0: never (default). */
  inlineComputeUs?: number
  /** Give back what a burst took once no batch has run for this many ms (`--idle-release`); 0: never (default). */
  idleReleaseMs?: number
  defaultMetrics?: boolean
  /** The gRPC server: http2 (grpc/h2/, node:http2 itself; the default) or grpc-js (@grpc/grpc-js). */
  grpcServer?: 'grpc-js' | 'http2'
  /** Where system shared memory keys are looked up (default /dev/shm; tests use their own directory). */
  shmDir?: string
  /**
   * The warm-up before ready (http/warmup.ts): `requests` sent to the REST listener once
   * the models are loaded, within `timeoutMs`. Undefined or 0 requests: none (serve passes
   * `--warmup-requests`; the REST listener must be listening when `start` is called).
   */
  warmup?: { requests: number, timeoutMs: number }
}

export interface Sidecar {
  manager: ModelManager
  /** What requests in flight hold of `--request-memory`. */
  requestMemory: RequestMemory
  pool: WorkerPool
  /** The REST API (its TCP and Unix-socket servers). */
  rest: RestApp
  /** The gRPC listener; grpc-js loads only when it is asked to listen. */
  grpc: GrpcServer | H2GrpcServer
  metricsServer: MetricsServer
  /** System shared memory regions registered over REST or gRPC; released on close. */
  sharedMemory: SharedMemoryRegions
  /** Loads the models (the servers answer "not ready" meanwhile if already listening). */
  start: () => Promise<void>
  /** Stops taking requests, lets in-flight ones finish (up to graceMs), then frees everything. */
  close: (graceMs?: number) => Promise<void>
}

export function createSidecar (opts: SidecarOptions): Sidecar {
  let shutting = false
  const metrics = createSidecarMetrics({ defaultMetrics: opts.defaultMetrics, logDropped: opts.logDropped })
  const pool = new WorkerPool({ workers: opts.workers, threads: opts.threads, logger: opts.logger, inProcess: opts.inProcess === true, idleReleaseMs: opts.idleReleaseMs ?? 0 })
  const manager = new ModelManager({
    repository: opts.repository,
    assigned: opts.models,
    fleet: opts.fleet,
    pool,
    logger: opts.logger,
    metrics,
    pollIntervalMs: opts.pollIntervalMs,
    watch: opts.watch,
    onChange: () => metricsServer.refresh(),
    inlineComputeUs: opts.inlineComputeUs ?? 0,
    onConfig: (model, config) => rollouts.configure(model, config),
    answering: (model: string): number | undefined => rollouts.answering(model)
  })
  const rollouts = new Rollouts({ versions: manager, pool, metrics: createRolloutMetrics(metrics.registry), events: new RolloutObserver({ logger: opts.logger, tracer: opts.tracer }) })
  const isShuttingDown = (): boolean => shutting
  const warmup = new WarmupState((opts.warmup?.requests ?? 0) > 0)
  const isWarming = (): boolean => warmup.warming
  const requestMemory = new RequestMemory(opts.requestMemory ?? requestLimits(DEFAULT_MEMORY_BUDGET).requestBytes)
  trackRequestMemory(metrics, requestMemory.budget)
  const sharedMemory = new SharedMemoryRegions({ dir: opts.shmDir })
  const runner = new InferenceDispatcher({ manager, rollouts })
  // The warm-up's calls are counted in a registry of their own that nobody scrapes.
  const quietMetrics = warmup.warming ? createSidecarMetrics({ defaultMetrics: false }) : undefined
  const observer = new InferenceObserver({ metrics, logger: opts.logger, tracer: opts.tracer, known: model => manager.has(model), quietMetrics })
  const rest = buildRestApp({
    manager,
    rollouts,
    runner,
    observer,
    logger: opts.logger,
    tracer: opts.tracer,
    bodyLimit: opts.bodyLimit,
    memory: requestMemory,
    isShuttingDown,
    version: opts.version ?? '0.0.0',
    sharedMemory,
    warmup
  })
  const grpc = new (opts.grpcServer === 'grpc-js' ? GrpcServer : H2GrpcServer)({
    manager,
    runner,
    observer,
    tracer: opts.tracer,
    isShuttingDown,
    isWarming,
    version: opts.version ?? '0.0.0',
    maxMessageBytes: opts.bodyLimit,
    memory: requestMemory,
    sharedMemory
  })
  const metricsServer = new MetricsServer({ registry: metrics.registry, manager, isShuttingDown, isWarming })

  /** Sends the warm-up, then lets readiness through; a warm-up that fails is logged, never fatal. */
  const warm = async (): Promise<void> => {
    const address = rest.server.address()
    if (!warmup.warming || address === null || typeof address === 'string') return
    // Per model, the version a request without one reaches (a rollout's live one, else the policy's pick).
    const answering: ModelSignature[] = []
    for (const name of new Set(manager.index().map(e => e.name))) {
      if (manager.state(name).state === 'READY') answering.push(runner.resolve({ model: name, version: undefined }, { answeredBy: () => {} }))
    }
    const { targets, skipped } = warmupTargets(answering, opts.bodyLimit)
    const log = opts.logger.child({ component: 'warmup' })
    for (const s of skipped) log.info({ model: s.model, version: s.version, reason: s.reason }, 'warm-up leaves this model out')
    if (targets.length === 0) return
    const { requests, timeoutMs } = opts.warmup ?? { requests: 0, timeoutMs: 0 } // set whenever warming
    const report = await warmUp({ address, state: warmup, targets, requests, timeoutMs, stopping: isShuttingDown })
    log[report.failed > 0 ? 'warn' : 'info'](report, report.failed > 0 ? 'warm-up requests failed' : 'warmed up')
  }

  return {
    manager,
    requestMemory,
    pool,
    rest,
    grpc,
    metricsServer,
    sharedMemory,
    start: async () => {
      try {
        await manager.start()
        await warm()
      } finally {
        warmup.end()
      }
      metricsServer.refresh()
    },
    close: async (graceMs = SERVE_DEFAULTS.shutdownGrace) => {
      shutting = true
      metricsServer.refresh() // probes see "not ready" at once
      const restClosed = Promise.all([closeServer(rest.server), closeServer(rest.socketServer)])
      // In-flight requests finish; keep-alive sockets close as soon as they go idle.
      const drained = rest.idle().then(() => {
        rest.server.closeIdleConnections()
        rest.socketServer.closeIdleConnections()
      })
      const timer = new Promise<void>(resolve => setTimeout(resolve, graceMs).unref())
      const grpcClosed = grpc.close(graceMs)
      await Promise.race([Promise.all([restClosed, drained]), timer])
      await grpcClosed
      rest.server.closeAllConnections()
      rest.socketServer.closeAllConnections()
      sharedMemory.close()
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
 * Serves the inference API on Unix domain sockets as well: REST on `<dir>/http.sock`
 * and, unless gRPC is off, gRPC on `<dir>/grpc.sock`. No TCP stack, and access is
 * whatever the files' permissions allow (0660: the sidecar's user and group, which a
 * pod's `fsGroup` shares with its app containers). Stale socket files are replaced.
 */
export async function listenOnSocket (sidecar: Sidecar, dir: string, opts: { grpc: boolean } = { grpc: false }): Promise<{ http: string, grpc?: string }> {
  const { mkdir } = await import('node:fs/promises')
  const path = await import('node:path')
  await mkdir(dir, { recursive: true })
  const server = sidecar.rest.socketServer
  const http = await onSocket(path.join(dir, HTTP_SOCKET_NAME), async file => { await listenOnPath(server, file) })
  if (!opts.grpc) return { http }
  const grpc = await onSocket(path.join(dir, GRPC_SOCKET_NAME), async file => { await sidecar.grpc.listenOnSocket(file) })
  return { http, grpc }
}

/** Replaces a stale socket file (never anything else), listens on `file`, then makes it mode 0660. */
async function onSocket (file: string, listen: (file: string) => Promise<void>): Promise<string> {
  const { chmod, lstat, unlink } = await import('node:fs/promises')
  const st = await lstat(file).catch(() => undefined)
  if (st !== undefined) {
    if (!st.isSocket()) throw new Error(`${file} exists and is not a socket`)
    await unlink(file)
  }
  await listen(file)
  await chmod(file, 0o660)
  return file
}
