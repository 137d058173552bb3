/**
 * `onnx-sidecar webhook`: reads its options once, builds the injector and listens until
 * SIGTERM or SIGINT, then stops accepting connections and lets in-flight reviews finish.
 *
 * With more than one process (`--processes`, by default the CPU limit, at most 2; formerly
 * `--workers`) the process is a node:cluster primary: it checks the files, forks the cluster
 * workers, serves `/metrics` (the sum of every worker's registry, prom-client's
 * AggregatorRegistry) and health, replaces a worker that dies, and on SIGTERM passes the
 * signal on and waits for the workers. Each worker is a whole webhook on the shared HTTPS
 * port (connections are dealt out round-robin) that reloads certificate, key and config by
 * itself, with its own share of the request memory (`--request-memory`) and its own
 * connection cap (`--max-connections`). Defaults: webhook-defaults.ts.
 */
import cluster, { type Worker } from 'node:cluster'
import { pino } from 'pino'
import { AggregatorRegistry } from 'prom-client'
import { readConfig, helpText, parse, commonOptions, processEnv, ConfigError, type Option } from '../common/config.js'
import { createLogger, type Logger } from '../common/logger.js'
import { close, listen } from '../common/http.js'
import { build, createMetricsServer } from './webhook-server.js'
import { defaultProcesses, defaultRequestMemory, MAX_DEFAULT_PROCESSES, MIN_REQUEST_MEMORY, WEBHOOK_DEFAULTS } from './webhook-defaults.js'
import { loadStartupFiles, type WebhookFiles } from './webhook-files.js'
import { kubeVersionOption } from './kube-version.js'
import { firstSignal } from '../common/early-signals.js'

const MiB = 1024 * 1024
const MS_PER_SECOND = 1000

export const WEBHOOK_OPTIONS = {
  tlsCert: { flag: '--tls-cert', env: 'ONNX_SIDECAR_TLS_CERT', description: 'PEM serving certificate (chain); reloaded when the file changes', default: WEBHOOK_DEFAULTS.tlsCert, defaultText: 'required', parse: parse.string } as Option<string>,
  tlsKey: { flag: '--tls-key', env: 'ONNX_SIDECAR_TLS_KEY', description: 'PEM private key of the serving certificate; reloaded when the file changes', default: WEBHOOK_DEFAULTS.tlsKey, defaultText: 'required', parse: parse.string } as Option<string>,
  config: { flag: '--config', env: 'ONNX_SIDECAR_CONFIG', description: 'injection config file (YAML or JSON); reloaded when it changes', default: WEBHOOK_DEFAULTS.config, defaultText: 'built-in defaults', parse: parse.string } as Option<string>,
  host: { flag: '--host', env: 'ONNX_SIDECAR_WEBHOOK_HOST', deprecatedEnv: 'ONNX_SIDECAR_HOST', description: 'address the HTTPS server binds (:: takes IPv6 and IPv4; 0.0.0.0 where the node has no IPv6)', default: WEBHOOK_DEFAULTS.host, parse: parse.string } as Option<string>,
  port: { flag: '--port', env: 'ONNX_SIDECAR_WEBHOOK_PORT', deprecatedEnv: 'ONNX_SIDECAR_PORT', description: 'HTTPS port for /mutate and health (0 picks a free port)', default: WEBHOOK_DEFAULTS.port, parse: parse.int(0, 65535) } as Option<number>,
  metricsPort: { flag: '--metrics-port', env: 'ONNX_SIDECAR_WEBHOOK_METRICS_PORT', deprecatedEnv: 'ONNX_SIDECAR_METRICS_PORT', description: 'plain-HTTP port for /metrics and health, all interfaces (0 picks a free port)', default: WEBHOOK_DEFAULTS.metricsPort, parse: parse.int(0, 65535) } as Option<number>,
  reloadInterval: { flag: '--reload-interval', env: 'ONNX_SIDECAR_RELOAD_INTERVAL', description: 'seconds between checks of the certificate, key and config files', default: WEBHOOK_DEFAULTS.reloadInterval, parse: parse.int(1, 3600) } as Option<number>,
  requestMemory: { flag: '--request-memory', env: 'ONNX_SIDECAR_WEBHOOK_REQUEST_MEMORY', description: 'bytes that reviews being read and parsed may hold at once, per process (503 + Retry-After beyond it)', default: WEBHOOK_DEFAULTS.requestMemory, defaultText: `memory limit / (4 x processes), at least ${MIN_REQUEST_MEMORY / MiB}mb (48mb per process at the chart's 384Mi and 2 processes)`, parse: parse.bytes } as Option<number>,
  maxConnections: { flag: '--max-connections', env: 'ONNX_SIDECAR_WEBHOOK_MAX_CONNECTIONS', description: 'HTTPS connections open at once, per process; at the cap a new one replaces the oldest idle or still-handshaking one (refused only when all have a request in flight)', default: WEBHOOK_DEFAULTS.maxConnections, parse: parse.int(1, 65535) } as Option<number>,
  kubeVersion: kubeVersionOption(),
  processes: { flag: '--processes', deprecatedFlag: '--workers', env: 'ONNX_SIDECAR_WEBHOOK_PROCESSES', deprecatedEnv: 'ONNX_SIDECAR_WEBHOOK_WORKERS', description: 'processes serving /mutate (node:cluster); 1 serves from this process', default: WEBHOOK_DEFAULTS.processes, defaultText: `the CPU limit, at most ${MAX_DEFAULT_PROCESSES}`, parse: parse.int(1, 64) } as Option<number>,
  ...commonOptions()
}

const USAGE = 'usage: onnx-sidecar webhook --tls-cert FILE --tls-key FILE [--config FILE] [--port 8443] [--metrics-port 9464] [--processes N]'

const RESTART_DELAY_MS = 1000 // 1 second before a worker that died is replaced

/** A worker's message to the primary once it listens (prom-client adds its own messages). */
const LISTENING = 'onnx-sidecar:listening'

type Opts = ReturnType<typeof readConfig<typeof WEBHOOK_OPTIONS>>
type Files = WebhookFiles

export async function webhookCommand (argv: string[]): Promise<number> {
  const opts = readConfig(WEBHOOK_OPTIONS, argv, processEnv())
  if (opts.help) {
    process.stdout.write(helpText(USAGE, WEBHOOK_OPTIONS))
    return 0
  }
  if (opts.tlsCert === '' || opts.tlsKey === '') throw new ConfigError('--tls-cert and --tls-key are required (the API server only calls webhooks over HTTPS)')
  const processes = opts.processes === 0 ? defaultProcesses() : opts.processes
  if (opts.requestMemory === 0) opts.requestMemory = defaultRequestMemory(processes) // each of the processes gets its share
  const files: Files = { tlsCertFile: opts.tlsCert, tlsKeyFile: opts.tlsKey, ...(opts.config === '' ? {} : { configFile: opts.config }) }
  if (cluster.isWorker) return await runWorker(opts, files)
  // Several processes share stdout: one write(2) per line keeps lines whole (pipes write up to 4 KiB atomically).
  // Such a synchronous destination holds nothing back: a stalled stdout blocks the process
  // in write(2) instead of growing its memory. One process logs asynchronously, holding
  // back at most 4 MiB and dropping (and counting) lines beyond that.
  let logDropped = 0
  const logger = createLogger({ level: opts.logLevel, name: 'onnx-sidecar-injector', ...(processes > 1 ? { stream: pino.destination({ fd: 1, sync: true }) } : { onDrop: () => { logDropped++ } }) })
  // once per run: cluster workers read the same environment but leave this to the primary
  for (const notice of opts._deprecated) logger.warn(notice)
  if (processes === 1) return await runSingle(opts, files, logger, () => logDropped)
  let image: string
  try {
    image = loadStartupFiles(files).config.image // a bad file stops start-up here, once, before any worker is forked
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
  return await runPrimary(opts, processes, image, logger)
}

function buildWebhook (opts: Opts, files: Files, logger: Logger, logDropped?: () => number): ReturnType<typeof build> {
  try {
    return build({ ...files, logger, logDropped, reloadIntervalMs: opts.reloadInterval * MS_PER_SECOND, requestMemoryBytes: opts.requestMemory, maxConnections: opts.maxConnections, ...(opts.kubeVersion === undefined ? {} : { kubeVersion: opts.kubeVersion }) })
  } catch (err) {
    // unreadable or invalid certificate, key or config: a start-up error, not a crash
    throw new ConfigError((err as Error).message)
  }
}

/** The first SIGTERM or SIGINT, also one received before this command loaded (common/early-signals.ts). */
function stopSignal (): Promise<NodeJS.Signals> {
  return firstSignal()
}

async function runSingle (opts: Opts, files: Files, logger: Logger, logDropped: () => number): Promise<number> {
  const webhook = buildWebhook(opts, files, logger, logDropped)
  await webhook.listen({ host: opts.host, port: opts.port, metricsPort: opts.metricsPort })
  const signal = await stopSignal()
  logger.info({ signal }, 'shutting down')
  await webhook.close()
  logger.flush()
  return 0
}

/** A cluster worker: the HTTPS side only; metrics go to the primary over IPC. */
async function runWorker (opts: Opts, files: Files): Promise<number> {
  // SIGTERM from the primary, a terminal's Ctrl-C (sent to the whole group), or the primary is gone (IPC closed)
  const stop = new Promise<void>(resolve => {
    void stopSignal().then(() => { resolve() })
    process.once('disconnect', resolve)
  })
  const logger = createLogger({ level: opts.logLevel, name: 'onnx-sidecar-injector', stream: pino.destination({ fd: 1, sync: true }) })
  const webhook = buildWebhook(opts, files, logger)
  AggregatorRegistry.setRegistries(webhook.registry)
  new AggregatorRegistry() // only for its side effect: installs the listener that answers the primary's metrics requests
  const { port } = await webhook.listen({ host: opts.host, port: opts.port })
  process.send?.({ type: LISTENING, port })
  await stop
  await webhook.close()
  logger.flush()
  process.disconnect?.()
  return 0
}

async function runPrimary (opts: Opts, count: number, image: string, logger: Logger): Promise<number> {
  const aggregator = new AggregatorRegistry()
  const metricsServer = createMetricsServer(async () => await aggregator.clusterMetrics(), aggregator.contentType, logger)
  const listening = new Map<Worker, number>()
  let stopping = false
  let started = false
  let failStartup: (code: number) => void = () => {}
  const startupFailed = new Promise<number>(resolve => { failStartup = resolve })
  let allListening: () => void = () => {}
  const ready = new Promise<void>(resolve => { allListening = resolve })

  function fork (): void {
    const worker = cluster.fork()
    worker.on('message', (m: { type?: string, port?: number } | null) => {
      if (m?.type !== LISTENING || typeof m.port !== 'number') return
      listening.set(worker, m.port)
      if (!started && listening.size === count) {
        started = true // from here on a worker that exits is replaced
        allListening()
      }
    })
  }
  cluster.on('exit', (worker, code, signal) => {
    listening.delete(worker)
    if (stopping) return
    if (!started) {
      failStartup(code ?? 1) // the worker printed why (a config error exits 2)
      return
    }
    logger.error({ workerPid: worker.process.pid, code, signal }, 'webhook worker exited; starting another')
    setTimeout(() => { if (!stopping) fork() }, RESTART_DELAY_MS) // the others serve meanwhile; a crash loop does not spin
  })
  for (let i = 0; i < count; i++) fork()

  const stop = stopSignal()
  const first = await Promise.race([ready.then(() => 'ready' as const), startupFailed, stop])
  if (first !== 'ready') {
    stopping = true
    await stopWorkers()
    return typeof first === 'number' ? first : 0
  }
  const port = [...listening.values()][0] as number
  const metricsPort = await listen(metricsServer, opts.metricsPort, WEBHOOK_DEFAULTS.host, logger)
  logger.info({ port, metricsPort, processes: count, image, maxConnections: opts.maxConnections, requestMemory: opts.requestMemory, kubeVersion: opts.kubeVersion?.text ?? 'unknown' }, 'injector listening') // both per worker
  const signal = await stop
  logger.info({ signal }, 'shutting down')
  stopping = true
  await stopWorkers()
  await close(metricsServer)
  logger.flush()
  return 0
}

/**
 * SIGTERMs every worker: one that is serving finishes its in-flight reviews and exits, one
 * still starting (no handler yet) just ends. Resolves when all have exited.
 */
async function stopWorkers (): Promise<void> {
  const all = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead())
  await Promise.all(all.map(async worker => {
    const exited = new Promise(resolve => worker.once('exit', resolve))
    worker.process.kill('SIGTERM')
    await exited
  }))
}
