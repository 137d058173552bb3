/** `onnx-sidecar serve`: run the sidecar until SIGTERM/SIGINT, then drain and exit 0. */
import { availableCpus, defaultParallelism } from '../common/cpu.js'
import { memoryBudget, requestLimits } from '../common/memory-limit.js'
import { FitError, THREADS, clampedWorkers, fleetCandidate, planParallelism, type FleetCandidate, type MemoryBudget } from '../common/contract.js'
import { ConfigError, helpText, otelRequested, processEnv, readConfig } from '../common/config.js'
import { hostPort, listen } from '../common/http.js'
import { createLogger } from '../common/logger.js'
import { VERSION } from '../common/version.js'
import { createSidecar, listenOnSocket } from './sidecar.js'
import { serveOptions } from '../common/serve-options.js'
import { startTracing } from './core/tracing.js'
import { capYoungGeneration, releaseYoungGeneration } from '../common/young-generation.js'
import { limitOldGenerationGrowth } from '../common/old-generation.js'
import { retainOptimisedCode } from '../common/code-retention.js'
import { firstSignal, receivedSignal } from '../common/early-signals.js'

/** Workers and threads by the contract's rule; what does not fit is a warning, not a refusal. */
function planWorkers (cpus: number, memory: MemoryBudget, opts: { workers: number, threads: number }): { workers: number, threads: number, warning?: string } {
  try {
    const p = planParallelism(cpus, memory, opts)
    const clamped = clampedWorkers(p, cpus)
    return clamped === undefined ? p : { ...p, warning: clamped }
  } catch (err) {
    if (!(err instanceof FitError)) throw err
    const workers = opts.workers > 0 ? opts.workers : 1
    const threads = opts.threads > 0 ? opts.threads : Math.min(THREADS.max, defaultParallelism(cpus, workers).threads)
    return { workers, threads, warning: err.subject === 'workers' ? `--workers ${workers} ${err.message}` : `memory budget ${memory.budget} bytes ${err.message}` }
  }
}

export async function serveCommand (argv: string[]): Promise<number> {
  const env = processEnv()
  const table = serveOptions()
  const opts = readConfig(table, argv, env)
  if (opts.help) {
    process.stdout.write(helpText('usage: onnx-sidecar serve [options]', table))
    return 0
  }
  let logDropped = 0 // lines stdout could not take (onnx_sidecar_log_dropped_total)
  const logger = createLogger({ level: opts.logLevel, name: 'onnx-sidecar', onDrop: () => { logDropped++ } })
  // Signals are handled from the process's first line (common/early-signals.ts): node is
  // PID 1 in the container, where a signal nothing handles is ignored, so a SIGTERM during
  // start-up or a long model load would otherwise wait for the kubelet's SIGKILL. A
  // repeated SIGTERM does not cut the drain short; a second Ctrl-C does.
  const signalled = firstSignal()
  const early = receivedSignal()
  if (early !== undefined) { // signalled while the modules loaded: nothing was served yet
    logger.info({ signal: early }, 'signalled before serving: stopped')
    logger.flush()
    return 0
  }
  // Measured on 1 CPU (README, Performance): the main thread saves ~10 MiB of idle RSS, but a
  // saturated 5M-parameter model then delays health probes to p99 ~105 ms (6.9 ms with a
  // worker) and serves 1,434 instead of 3,390 req/s; so a worker stays the default.
  const inProcess = opts.inferenceThread === 'main'
  const tracing = startTracing({ enabled: otelRequested(env) })
  const version = VERSION
  const budget = memoryBudget(opts.memoryLimit > 0 ? opts.memoryLimit : undefined)
  const derived = requestLimits(budget.bytes)
  const bodyLimit = opts.bodyLimit > 0 ? opts.bodyLimit : derived.bodyLimit
  const requestMemory = opts.requestMemory > 0 ? opts.requestMemory : derived.requestBytes
  if (requestMemory < 2 * bodyLimit) {
    throw new ConfigError(`--request-memory (${requestMemory} bytes) must be at least twice --body-limit (${bodyLimit} bytes): a body of the largest allowed size, and the tensors decoded from it, must fit`)
  }
  let fleet: FleetCandidate | undefined
  try {
    fleet = fleetCandidate(opts.model, opts.candidate, opts.canary, { model: '--model', candidate: '--candidate', canary: '--canary' })
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
  const cpus = availableCpus()
  // The injector's rule (common/contract.ts): workers from the CPUs and what the memory budget
  // holds beside the request memory, at most 16 derived; explicit --workers / --threads kept.
  // A budget too small for them is the injector's denial; here it is a warning, and serve runs.
  const plan = planWorkers(cpus, { budget: budget.bytes, requestMemory, bodyLimit, requestMemoryGiven: opts.requestMemory > 0 }, opts)
  const { workers, threads } = plan
  const sidecar = createSidecar({
    repository: opts.modelRepository,
    models: opts.model,
    fleet,
    workers,
    threads,
    inProcess,
    bodyLimit,
    requestMemory,
    pollIntervalMs: opts.pollInterval,
    watch: true,
    logger,
    logDropped: () => logDropped,
    tracer: tracing.tracer,
    version,
    inlineComputeUs: opts.inlineComputeUs,
    idleReleaseMs: opts.idleRelease,
    grpcServer: opts.grpcServer,
    warmup: { requests: opts.warmupRequests, timeoutMs: opts.warmupTimeout }
  })
  let metricsPort: number
  let inferencePort: number
  let grpcPort: number | undefined
  let sockets: { http: string, grpc?: string } | undefined
  try {
    metricsPort = await sidecar.metricsServer.listen(opts.metricsPort, opts.metricsHost, { livenessTimeoutMs: opts.livenessTimeout })
    inferencePort = await listen(sidecar.rest.server, opts.port, opts.host, logger)
    if (opts.grpcPort !== null) grpcPort = await sidecar.grpc.listen(opts.grpcPort, opts.host)
    if (opts.socketDir !== '') sockets = await listenOnSocket(sidecar, opts.socketDir, { grpc: opts.grpcPort !== null })
  } catch (err) {
    // A taken port must end the process (a pod restarts it), not leave it running deaf.
    logger.fatal({ err: (err as Error).message }, 'cannot listen; exiting')
    await sidecar.close(0)
    await tracing.shutdown()
    logger.flush()
    return 1
  }
  if (plan.warning !== undefined && !inProcess) logger.warn({ cpus, workers, threads, memoryBudget: budget.bytes, requestMemory }, plan.warning)
  logger.info({ version, repository: opts.modelRepository, models: opts.model.length === 0 ? 'all' : opts.model, inference: `http://${hostPort(opts.host, inferencePort)}`, grpc: grpcPort === undefined ? 'off' : hostPort(opts.host, grpcPort), sockets, metrics: `http://${hostPort(opts.metricsHost, metricsPort)}/metrics`, livenessTimeoutMs: opts.livenessTimeout, cpus, workers: inProcess ? 0 : workers, inferenceThread: inProcess ? 'main' : 'worker', threads, memoryBudget: budget.bytes, memoryBudgetFrom: budget.source, bodyLimit, requestMemory }, 'onnx-sidecar serving')
  if (opts.host !== '127.0.0.1' && opts.host !== '::1' && opts.host !== 'localhost') {
    logger.warn({ host: opts.host }, 'inference is listening off loopback: anything that can reach this address can run the models')
  }
  // A signal while the models load stops the load: no waiting for it to finish first.
  const starting = sidecar.start()
  starting.catch(() => {}) // a load failing after the signal won must not crash the shutdown
  starting.then(releaseYoungGeneration, releaseYoungGeneration) // loaded: the new space may grow under load again
  capYoungGeneration(opts.youngGenerationMax) // up to this (common/young-generation.ts)
  limitOldGenerationGrowth(opts.oldGenerationGrowth) // and the old space's swings (common/old-generation.ts)
  retainOptimisedCode() // the compiled request path outlives an idle release (common/code-retention.ts)
  const first = await Promise.race([starting.then(() => undefined), signalled])
  const signal = first ?? await signalled
  logger.info({ signal, inFlight: sidecar.rest.inFlight(), graceMs: opts.shutdownGrace, ...(first !== undefined ? { loading: true } : {}) }, first !== undefined ? 'shutting down while the models load' : 'shutting down: finishing in-flight requests')
  try {
    await sidecar.close(opts.shutdownGrace)
  } catch (err) {
    logger.error({ err }, 'shutdown failed')
    return 1
  }
  await tracing.shutdown()
  logger.info('stopped')
  logger.flush()
  return 0
}
