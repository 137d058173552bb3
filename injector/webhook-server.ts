/**
 * The HTTP side of the injector: `build(opts)` makes the HTTPS server (AdmissionReview at
 * `/mutate`, health) and the plain-HTTP metrics server; `listen` is separate so tests build
 * the app and talk to it in-process. Certificate, key and injection config are re-read
 * every `reloadIntervalMs` and swapped in when they change (cert-manager and kubelet
 * rotate them on disk); a bad new file is logged and counted, and the previous one stays in use.
 *
 * Limits, so that no client (the API server's calls come from inside the cluster network,
 * and so can anyone else's) can hold the process: TLS handshake, header, request and
 * keep-alive timeouts, a connection cap that closes the oldest idle or still-handshaking
 * connection to make room for a new one (`webhook-connections.ts`), a body limit, and a
 * memory budget for the reviews being read and parsed at once (`review-body.ts`); a review
 * that does not fit is answered 503 with Retry-After.
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import type { Logger } from '../common/logger.js'
import { ByteBudget } from '../common/byte-budget.js'
import { close, listen, sendError, sendJsonText } from '../common/http.js'
import { admit } from './admission.js'
import { errors, InjectorError } from './errors.js'
import type { InjectionConfig } from './injection-config.js'
import { readReview } from './review-body.js'
import type { KubeVersion } from './kube-version.js'
import { FileReloader, loadStartupFiles, tlsOptions, type WebhookFiles } from './webhook-files.js'
import { WebhookMetrics } from './webhook-metrics.js'
import { ConnectionCap } from './webhook-connections.js'
import { defaultRequestMemory, WEBHOOK_DEFAULTS as DEFAULTS } from './webhook-defaults.js'

const MS_PER_SECOND = 1000

export interface WebhookOptions extends WebhookFiles {
  logger: Logger
  reloadIntervalMs?: number
  maxBodyBytes?: number
  /** Bytes reviews being read and parsed may hold at once (`--request-memory`); by default what one process gets (`defaultRequestMemory(1)`). */
  requestMemoryBytes?: number
  /** Connections the HTTPS server keeps open at once (`--max-connections`); at the cap a new one replaces the oldest idle or handshaking one. */
  maxConnections?: number
  /** The API server's version (`--kube-version`); undefined when unknown. */
  kubeVersion?: KubeVersion
  /** Shorter timeouts for tests; DEFAULTS otherwise. */
  timeouts?: Partial<Timeouts>
  /** Log lines the logger has dropped so far (createLogger's onDrop), for onnx_sidecar_injector_log_dropped_total. */
  logDropped?: () => number
}

export interface Timeouts {
  handshakeTimeoutMs: number
  headersTimeoutMs: number
  requestTimeoutMs: number
  keepAliveTimeoutMs: number
}

export interface ListenOptions {
  host?: string
  port: number
  metricsHost?: string
  /** 0 picks a free port; `undefined` leaves the metrics server off. */
  metricsPort?: number
}

export interface Webhook {
  server: HttpsServer
  /** The HTTPS server's connection cap and the connections open now. */
  connections: ConnectionCap
  metricsServer: HttpServer
  registry: Registry
  config: () => InjectionConfig
  /** Checks the certificate, key and config files now (the timer does this periodically). */
  reload: () => Promise<void>
  listen: (opts: ListenOptions) => Promise<{ port: number, metricsPort?: number }>
  close: () => Promise<void>
}

const HEALTH_BODY = '{"status":"ok"}'

function healthy (method: string, path: string): boolean {
  return (method === 'GET' || method === 'HEAD') && (path === '/healthz' || path === '/v2/health/live' || path === '/v2/health/ready')
}

/** The timeouts of both servers, as Node.js server options; `maxConnections` is set on the server itself. */
function httpLimits (t: Partial<Timeouts> = {}): { headersTimeout: number, requestTimeout: number, keepAliveTimeout: number, connectionsCheckingInterval: number } {
  const headersTimeout = t.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs
  const requestTimeout = t.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs
  return {
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: t.keepAliveTimeoutMs ?? DEFAULTS.keepAliveTimeoutMs,
    // checked this often: never less often than the shortest timeout
    connectionsCheckingInterval: Math.min(DEFAULTS.connectionsCheckingIntervalMs, headersTimeout, requestTimeout)
  }
}

/**
 * The plain-HTTP server of `/metrics` and health. `metrics` gives the exposition text: one
 * registry's, or in cluster mode the primary's sum over every worker's registry.
 */
export function createMetricsServer (metrics: () => Promise<string>, contentType: string, log: Logger): HttpServer {
  const server = createHttpServer(httpLimits(), (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    const method = req.method ?? 'GET'
    if (method === 'GET' && path === '/metrics') {
      metrics().then(text => {
        res.writeHead(200, { 'content-type': contentType })
        res.end(text)
      }, (err: unknown) => {
        log.error({ err }, 'metrics collection failed')
        sendError(res, errors.INTERNAL())
      })
      return
    }
    if (healthy(method, path)) sendJsonText(res, 200, HEALTH_BODY)
    else sendError(res, errors.NOT_FOUND(method, path))
  })
  server.maxConnections = DEFAULTS.metricsMaxConnections
  return server
}

interface RouteDeps {
  config: () => InjectionConfig
  cluster: { kubeVersion?: KubeVersion }
  maxBodyBytes: number
  budget: ByteBudget
  metrics: WebhookMetrics
}

/** The HTTPS routes: `POST /mutate` and health; anything else is a 404 or 405 with a code. */
function routes (deps: RouteDeps): (req: IncomingMessage, res: ServerResponse) => void {
  async function mutate (req: IncomingMessage, res: ServerResponse, started: bigint): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
    if (type !== 'application/json') throw errors.UNSUPPORTED_MEDIA_TYPE(type)
    const { body, reservation } = await readReview(req, { maxBytes: deps.maxBodyBytes, budget: deps.budget })
    try {
      const outcome = admit(body, deps.config(), deps.cluster)
      sendJsonText(res, 200, outcome.json)
      deps.metrics.admission(outcome, started)
    } finally {
      reservation.release()
    }
  }

  /** A review that got no AdmissionReview answer: an HTTP error, counted and logged like an admission. */
  function failed (res: ServerResponse, err: unknown, started: bigint): void {
    const known = err instanceof InjectorError
    const e = known ? err : errors.INTERNAL()
    if (e.code === errors.OVERLOADED.code) deps.metrics.overloaded()
    // A body too large is left unread (its declared length may be anything up to 2^64 - 1):
    // close the connection rather than drain it, as the sidecar does.
    sendError(res, e, e.statusCode === 413 ? { connection: 'close' } : {}) // nothing when the answer has begun
    deps.metrics.admission({ uid: '', namespace: '', pod: '', result: 'error', reason: e.message, warnings: [], ...(known ? {} : { error: err }) }, started)
  }

  return (req, res) => {
    const started = process.hrtime.bigint()
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    const method = req.method ?? 'GET'
    if (path === '/mutate') {
      if (method !== 'POST') sendError(res, errors.METHOD_NOT_ALLOWED(method, path))
      else mutate(req, res, started).catch((err: unknown) => { failed(res, err, started) })
      return
    }
    if (healthy(method, path)) sendJsonText(res, 200, HEALTH_BODY)
    else sendError(res, errors.NOT_FOUND(method, path))
  }
}

/**
 * Builds the webhook from its parts: the files it serves from (read now; throws on a bad
 * one) and their reloader, its metrics, the HTTPS server with its routes and limits, and
 * the metrics server. Nothing listens until `listen`.
 */
export function build (opts: WebhookOptions): Webhook {
  const log = opts.logger
  const budget = new ByteBudget(opts.requestMemoryBytes ?? defaultRequestMemory(1))
  const startup = loadStartupFiles(opts)
  const metrics = new WebhookMetrics(budget, log, opts.logDropped)

  const server: HttpsServer = createHttpsServer({ ...tlsOptions(startup.tls), ...httpLimits(opts.timeouts), handshakeTimeout: opts.timeouts?.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs })
  // not server.maxConnections: that closes every new connection at the cap, the API server's too
  const connections = new ConnectionCap(opts.maxConnections ?? DEFAULTS.maxConnections, {
    shed: state => { metrics.connectionShed(state) },
    refused: () => { metrics.connectionRefused() }
  })
  connections.attach(server)
  metrics.watchConnections(() => connections.counts())
  server.on('tlsClientError', (err) => { log.debug({ err: err.message }, 'TLS handshake failed') })

  const files = new FileReloader({
    files: opts,
    startup,
    log,
    setTls: options => { server.setSecureContext(options) },
    failed: file => { metrics.reloadFailed(file) }
  })
  const reload = (): Promise<void> => files.reload()
  const timer = setInterval(() => { reload().catch(() => {}) }, opts.reloadIntervalMs ?? DEFAULTS.reloadInterval * MS_PER_SECOND)
  timer.unref()

  server.on('request', routes({
    config: () => files.config,
    cluster: opts.kubeVersion === undefined ? {} : { kubeVersion: opts.kubeVersion },
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
    budget,
    metrics
  }))
  const metricsServer = createMetricsServer(async () => await metrics.registry.metrics(), metrics.registry.contentType, log)

  return {
    server,
    connections,
    metricsServer,
    registry: metrics.registry,
    config: () => files.config,
    reload,
    async listen (l) {
      const port = await listen(server, l.port, l.host ?? DEFAULTS.host, log)
      if (l.metricsPort === undefined) return { port }
      const metricsPort = await listen(metricsServer, l.metricsPort, l.metricsHost ?? DEFAULTS.host, log)
      log.info({ port, metricsPort, image: files.config.image, maxConnections: connections.max, requestMemory: budget.capacity, kubeVersion: opts.kubeVersion?.text ?? 'unknown' }, 'injector listening')
      return { port, metricsPort }
    },
    async close () {
      clearInterval(timer)
      await Promise.all([close(server), close(metricsServer)])
    }
  }
}
