/**
 * The HTTP side of the injector: `build(opts)` makes the HTTPS server (AdmissionReview at
 * `/mutate`, health) and the plain-HTTP metrics server; `listen` is separate so tests build
 * the app and talk to it in-process. Certificate, key and injection config are re-read
 * every `reloadIntervalMs` and swapped in when they change (cert-manager and kubelet
 * rotate them on disk); a bad new file is logged and counted, and the previous one stays in use.
 *
 * Limits, so that no client (the API server's calls come from inside the cluster network,
 * and so can anyone else's) can hold the process: TLS handshake, header, request and
 * keep-alive timeouts, a connection cap, a body limit, and a memory budget for the reviews
 * being read and parsed at once (`review-body.ts`); a review that does not fit is answered
 * 503 with Retry-After.
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import { X509Certificate, createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client'
import type { Logger } from '../common/logger.js'
import { ByteBudget } from '../common/byte-budget.js'
import { admit, type AdmissionOutcome, type AdmissionResult } from './admission.js'
import { errors, InjectorError } from './errors.js'
import { loadInjectionConfig, parseInjectionConfig, type InjectionConfig } from './injection-config.js'
import { readReview } from './review-body.js'
import type { KubeVersion } from './kube-version.js'

const MiB = 1024 * 1024

export const DEFAULTS = {
  reloadIntervalMs: 5000, // 5 seconds: how often certificate, key and config files are checked
  // 4 MiB: the API server refuses request bodies over 3 MiB and etcd stores objects up to
  // 1.5 MiB (protobuf, a little larger as JSON); the review wrapper adds a few KiB
  maxBodyBytes: 4 * MiB,
  // 64 MiB: what reviews being read and parsed may hold at once in one process. A typical
  // review is charged ~10 KiB, a 4 MiB one of long strings ~9 MiB; one charged more than
  // this is always refused: only bodies built to be expensive (4 MiB of `[{},{},…]`: 180 MiB)
  requestMemoryBytes: 64 * MiB,
  maxConnections: 256, // per process: the API servers' connections, kept alive, plus probes
  handshakeTimeoutMs: 10_000, // 10 seconds for a client to finish the TLS handshake
  headersTimeoutMs: 10_000, // 10 seconds from a request's first byte to the end of its headers
  requestTimeoutMs: 30_000, // 30 seconds for a whole request: the API server gives up after at most 30 (timeoutSeconds)
  keepAliveTimeoutMs: 65_000, // 65 seconds idle on a kept-alive connection: longer than the API server's idle connection reuse
  connectionsCheckingIntervalMs: 1000, // 1 second: how often Node.js checks the header and request timeouts
  metricsMaxConnections: 64, // per process, on the metrics server: Prometheus and the kubelet's probes
  host: '::', // every interface, IPv6 and IPv4 (dual-stack); 0.0.0.0 where the node has no IPv6
  minTlsVersion: 'TLSv1.2' as const
}

/** Seconds a client refused for lack of memory is told to wait (`Retry-After`). */
export const RETRY_AFTER_SECONDS = 1

const RESULTS: readonly AdmissionResult[] = ['injected', 'skipped', 'denied', 'error']

export interface WebhookOptions {
  tlsCertFile: string
  tlsKeyFile: string
  /** Injection config file; built-in defaults without it. */
  configFile?: string
  logger: Logger
  reloadIntervalMs?: number
  maxBodyBytes?: number
  /** Bytes reviews being read and parsed may hold at once (`--request-memory`). */
  requestMemoryBytes?: number
  /** Connections the HTTPS server accepts at once (`--max-connections`); more are closed at once. */
  maxConnections?: number
  /** The API server's version (`--kube-version`); undefined when unknown. */
  kubeVersion?: KubeVersion
  /** Shorter timeouts for tests; DEFAULTS otherwise. */
  timeouts?: Partial<Timeouts>
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
  metricsServer: HttpServer
  registry: Registry
  config: () => InjectionConfig
  /** Checks the certificate, key and config files now (the timer does this periodically). */
  reload: () => Promise<void>
  listen: (opts: ListenOptions) => Promise<{ port: number, metricsPort?: number }>
  close: () => Promise<void>
}

interface TlsFiles { cert: Buffer, key: Buffer }

function fingerprint (...parts: Array<Buffer | string>): string {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest('hex')
}

function tlsOptions (files: TlsFiles): SecureContextOptions {
  return { cert: files.cert, key: files.key, minVersion: DEFAULTS.minTlsVersion }
}

function certSummary (cert: Buffer): { subject: string, notAfter: string } {
  try {
    const x = new X509Certificate(cert)
    return { subject: x.subject.replace(/\n/g, ', '), notAfter: new Date(x.validTo).toISOString() }
  } catch {
    return { subject: '(unparsable)', notAfter: '' }
  }
}

interface StartupFiles { tls: TlsFiles, config: InjectionConfig, configPrint: string }

/**
 * Reads the certificate, key and injection config as the server starts: throws when one is
 * unreadable or invalid (fail fast; later reloads only log). The cluster primary calls it
 * too, so a bad file stops start-up once, before any worker is forked.
 */
export function loadStartupFiles (opts: Pick<WebhookOptions, 'tlsCertFile' | 'tlsKeyFile' | 'configFile'>): StartupFiles {
  const tls: TlsFiles = { cert: readFileSync(opts.tlsCertFile), key: readFileSync(opts.tlsKeyFile) }
  createSecureContext(tlsOptions(tls))
  const config = loadInjectionConfig(opts.configFile)
  const configPrint = opts.configFile === undefined ? '' : fingerprint(readFileSync(opts.configFile))
  return { tls, config, configPrint }
}

function healthy (method: string, path: string): boolean {
  return (method === 'GET' || method === 'HEAD') && (path === '/healthz' || path === '/v2/health/live' || path === '/v2/health/ready')
}

function sendJson (res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function sendError (res: ServerResponse, err: InjectorError): void {
  if (err.code === errors.OVERLOADED.code) res.setHeader('retry-after', String(RETRY_AFTER_SECONDS))
  sendJson(res, err.statusCode, JSON.stringify({ error: err.message, code: err.code }))
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
 * Listens on `host`; the default `::` takes IPv6 and IPv4 connections, but fails where the
 * kernel has IPv6 turned off: then 0.0.0.0. Resolves with the port.
 */
export function listenOn (s: HttpServer | HttpsServer, port: number, host: string, log: Logger): Promise<number> {
  const attempt = (h: string): Promise<number> => new Promise((resolve, reject) => {
    s.once('error', reject)
    s.listen(port, h, () => {
      s.off('error', reject)
      resolve((s.address() as AddressInfo).port)
    })
  })
  return attempt(host).catch(async (err: NodeJS.ErrnoException) => {
    if (host !== '::' || (err.code !== 'EAFNOSUPPORT' && err.code !== 'EADDRNOTAVAIL')) throw err
    log.warn({ host, err: err.message }, 'no IPv6 on this host; listening on 0.0.0.0')
    return await attempt('0.0.0.0')
  })
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
    if (healthy(method, path)) sendJson(res, 200, '{"status":"ok"}')
    else sendError(res, errors.NOT_FOUND(method, path))
  })
  server.maxConnections = DEFAULTS.metricsMaxConnections
  return server
}

export function build (opts: WebhookOptions): Webhook {
  const log = opts.logger
  const reloadIntervalMs = opts.reloadIntervalMs ?? DEFAULTS.reloadIntervalMs
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULTS.maxBodyBytes
  const budget = new ByteBudget(opts.requestMemoryBytes ?? DEFAULTS.requestMemoryBytes)
  const cluster = opts.kubeVersion === undefined ? {} : { kubeVersion: opts.kubeVersion }

  const startup = loadStartupFiles(opts)
  const tls = startup.tls
  let tlsPrint = fingerprint(tls.cert, tls.key)
  let config = startup.config
  let configPrint = startup.configPrint
  const failed = new Set<string>() // fingerprints already reported as bad, so a broken file logs once

  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const admissions = new Counter({ name: 'onnx_sidecar_injector_admissions_total', help: 'AdmissionReviews answered, by result (injected, skipped, denied, error)', labelNames: ['result'], registers: [registry] })
  const duration = new Histogram({ name: 'onnx_sidecar_injector_admission_duration_seconds', help: 'Time from request to AdmissionReview response', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] })
  const overloaded = new Counter({ name: 'onnx_sidecar_injector_overloaded_total', help: 'Reviews refused with 503 because reviews in flight held the request memory (--request-memory)', registers: [registry] })
  const inFlight = new Gauge({ name: 'onnx_sidecar_injector_request_memory_bytes', help: 'Bytes reserved by reviews being read and parsed (at most --request-memory)', registers: [registry], collect: () => { inFlight.set(budget.used) } })
  const reloadFailures = new Counter({ name: 'onnx_sidecar_injector_reload_failures_total', help: 'Changed certificate/key (file="tls") or injection config (file="config") files that could not be read or loaded; the previous ones stay in use', labelNames: ['file'], registers: [registry] })
  for (const r of RESULTS) admissions.labels(r).inc(0)
  for (const f of ['tls', 'config']) reloadFailures.labels(f).inc(0)

  const server = createHttpsServer({ ...tlsOptions(tls), ...httpLimits(opts.timeouts), handshakeTimeout: opts.timeouts?.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs }, (req, res) => { handle(req, res) })
  server.maxConnections = opts.maxConnections ?? DEFAULTS.maxConnections
  server.on('tlsClientError', (err) => { log.debug({ err: err.message }, 'TLS handshake failed') })

  function record (outcome: Pick<AdmissionOutcome, 'uid' | 'namespace' | 'pod' | 'result' | 'reason' | 'warnings' | 'error'>, started: bigint): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    admissions.labels(outcome.result).inc()
    duration.observe(seconds)
    const fields = {
      uid: outcome.uid,
      namespace: outcome.namespace,
      pod: outcome.pod,
      result: outcome.result,
      reason: outcome.reason,
      warnings: outcome.warnings.length,
      durationMs: Math.round(seconds * 1e6) / 1e3
    }
    if (outcome.error !== undefined) log.error({ ...fields, err: outcome.error }, 'admission failed')
    else log.info(fields, 'admission')
  }

  async function mutate (req: IncomingMessage, res: ServerResponse, started: bigint): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
    if (type !== 'application/json') throw errors.UNSUPPORTED_MEDIA_TYPE(type)
    const { body, reservation } = await readReview(req, { maxBytes: maxBodyBytes, budget })
    try {
      const outcome = admit(body, config, cluster)
      sendJson(res, 200, outcome.json)
      record(outcome, started)
    } finally {
      reservation.release()
    }
  }

  function handle (req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint()
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    const method = req.method ?? 'GET'
    if (path === '/mutate') {
      if (method !== 'POST') {
        sendError(res, errors.METHOD_NOT_ALLOWED(method, path))
        return
      }
      mutate(req, res, started).catch((err: unknown) => {
        const known = err instanceof InjectorError
        const e = known ? err : errors.INTERNAL()
        if (e.code === errors.OVERLOADED.code) overloaded.inc()
        if (!res.headersSent) sendError(res, e)
        record({ uid: '', namespace: '', pod: '', result: 'error', reason: e.message, warnings: [], ...(known ? {} : { error: err }) }, started)
      })
      return
    }
    if (healthy(method, path)) sendJson(res, 200, '{"status":"ok"}')
    else sendError(res, errors.NOT_FOUND(method, path))
  }

  const metricsServer = createMetricsServer(async () => await registry.metrics(), registry.contentType, log)

  async function reloadTls (): Promise<void> {
    let next: TlsFiles
    try {
      next = { cert: await readFile(opts.tlsCertFile), key: await readFile(opts.tlsKeyFile) }
    } catch (err) {
      reloadFailures.labels('tls').inc()
      log.warn({ err: (err as Error).message }, 'cannot read the TLS certificate or key; keeping the current one')
      return
    }
    const print = fingerprint(next.cert, next.key)
    if (print === tlsPrint || failed.has(print)) return
    try {
      createSecureContext(tlsOptions(next)) // throws on a key that does not match the certificate
    } catch (err) {
      // cert-manager writes the two files one after the other: a mismatch is usually gone by the next check
      failed.add(print)
      reloadFailures.labels('tls').inc()
      log.warn({ err: (err as Error).message }, 'new TLS certificate and key do not load; keeping the current one')
      return
    }
    server.setSecureContext(tlsOptions(next))
    tlsPrint = print
    log.info(certSummary(next.cert), 'TLS certificate reloaded')
  }

  async function reloadConfig (): Promise<void> {
    if (opts.configFile === undefined) return
    let text: string
    try {
      text = await readFile(opts.configFile, 'utf8')
    } catch (err) {
      reloadFailures.labels('config').inc()
      log.warn({ err: (err as Error).message }, 'cannot read the injection config; keeping the current one')
      return
    }
    const print = fingerprint(text)
    if (print === configPrint || failed.has(print)) return
    try {
      config = parseInjectionConfig(text, opts.configFile)
    } catch (err) {
      failed.add(print)
      reloadFailures.labels('config').inc()
      log.error({ err: (err as Error).message, code: (err as InjectorError).code }, 'invalid injection config; keeping the current one')
      return
    }
    configPrint = print
    log.info({ image: config.image }, 'injection config reloaded')
  }

  // Checks run one after the other, so a check asked for now always reads the files after the call.
  let queue: Promise<void> = Promise.resolve()
  function reload (): Promise<void> {
    queue = queue.then(async () => { await Promise.all([reloadTls(), reloadConfig()]) })
    return queue
  }
  const timer = setInterval(() => { reload().catch(() => {}) }, reloadIntervalMs)
  timer.unref()

  function closeServer (s: HttpServer | HttpsServer): Promise<void> {
    return new Promise(resolve => {
      if (!s.listening) {
        resolve()
        return
      }
      s.close(() => { resolve() })
      s.closeIdleConnections()
    })
  }

  return {
    server,
    metricsServer,
    registry,
    config: () => config,
    reload,
    async listen (l) {
      const port = await listenOn(server, l.port, l.host ?? DEFAULTS.host, log)
      if (l.metricsPort === undefined) return { port }
      const metricsPort = await listenOn(metricsServer, l.metricsPort, l.metricsHost ?? DEFAULTS.host, log)
      log.info({ port, metricsPort, image: config.image, maxConnections: server.maxConnections, requestMemory: budget.capacity, kubeVersion: opts.kubeVersion?.text ?? 'unknown' }, 'injector listening')
      return { port, metricsPort }
    },
    async close () {
      clearInterval(timer)
      await Promise.all([closeServer(server), closeServer(metricsServer)])
    }
  }
}
