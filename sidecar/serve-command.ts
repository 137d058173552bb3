/** `onnx-sidecar serve`: run the sidecar until SIGTERM/SIGINT, then drain and exit 0. */
import { readFileSync } from 'node:fs'
import { availableCpus, defaultParallelism } from '../common/cpu.js'
import { helpText, otelRequested, processEnv, readConfig } from '../common/config.js'
import { createLogger } from '../common/logger.js'
import { createSidecar, listenOnSocket, portOf } from './sidecar.js'
import { serveOptions } from './serve-options.js'
import { startTracing } from './tracing.js'

function packageVersion (): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }
    return pkg.version ?? '0.0.0'
  } catch {
    return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version as string
  }
}

function listen (server: import('node:http').Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
}

export async function serveCommand (argv: string[]): Promise<number> {
  const env = processEnv()
  const table = serveOptions()
  const opts = readConfig(table, argv, env)
  if (opts.help) {
    process.stdout.write(helpText('usage: onnx-sidecar serve [options]', table))
    return 0
  }
  const logger = createLogger({ level: opts.logLevel, name: 'onnx-sidecar' })
  const cpus = availableCpus()
  const parallelism = defaultParallelism(cpus, opts.workers > 0 ? opts.workers : undefined)
  const workers = parallelism.workers
  const threads = opts.threads > 0 ? opts.threads : parallelism.threads
  const tracing = startTracing({ enabled: otelRequested(env) })
  const version = packageVersion()
  const sidecar = createSidecar({
    repository: opts.modelRepository,
    models: opts.model,
    workers,
    threads,
    bodyLimit: opts.bodyLimit,
    pollIntervalMs: opts.pollInterval,
    watch: true,
    logger,
    tracer: tracing.tracer,
    version,
    inlineComputeUs: opts.inlineComputeUs
  })
  let metricsPort: number
  let grpcPort: number | undefined
  let sockets: { http: string, grpc?: string } | undefined
  try {
    metricsPort = await sidecar.metricsServer.listen(opts.metricsPort, opts.metricsHost)
    await listen(sidecar.inference.server, opts.port, opts.host)
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
  const inferencePort = portOf(sidecar.inference.server)
  logger.info({ version, repository: opts.modelRepository, models: opts.model.length === 0 ? 'all' : opts.model, inference: `http://${opts.host}:${inferencePort}`, grpc: grpcPort === undefined ? 'off' : `${opts.host}:${grpcPort}`, sockets, metrics: `http://${opts.metricsHost}:${metricsPort}/metrics`, cpus, workers, threads }, 'onnx-sidecar serving')
  if (opts.host !== '127.0.0.1' && opts.host !== '::1' && opts.host !== 'localhost') {
    logger.warn({ host: opts.host }, 'inference is listening off loopback: anything that can reach this address can run the models')
  }
  await sidecar.start()

  return await new Promise<number>(resolve => {
    let stopping = false
    const stop = (signal: string): void => {
      if (stopping) return
      stopping = true
      logger.info({ signal, inFlight: sidecar.inference.inFlight(), graceMs: opts.shutdownGrace }, 'shutting down: finishing in-flight requests')
      sidecar.close(opts.shutdownGrace).then(async () => {
        await tracing.shutdown()
        logger.info('stopped')
        logger.flush()
        resolve(0)
      }, (err: unknown) => {
        logger.error({ err }, 'shutdown failed')
        resolve(1)
      })
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
}
