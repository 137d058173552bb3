/**
 * The HTTP side of the injector: `build(opts)` makes the HTTPS server (AdmissionReview at
 * `/mutate`, health) and the plain-HTTP metrics server; `listen` is separate so tests build
 * the app and talk to it in-process. Certificate, key and injection config are re-read
 * every `reloadIntervalMs` and swapped in when they change (cert-manager and kubelet
 * rotate them on disk); a bad new file is logged and the previous one stays in use.
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import { X509Certificate, createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { Registry, Counter, Histogram, collectDefaultMetrics } from 'prom-client'
import type { Logger } from '../common/logger.js'
import { readBody, type BodyErrors } from '../common/read-body.js'
import { admit, type AdmissionOutcome, type AdmissionResult } from './admission.js'
import { errors, InjectorError } from './errors.js'
import { loadInjectionConfig, parseInjectionConfig, type InjectionConfig } from './injection-config.js'

export const DEFAULTS = {
  reloadIntervalMs: 5000, // 5 seconds: how often certificate, key and config files are checked
  maxBodyBytes: 8 * 1024 * 1024, // 8 MiB: a pod is at most ~1.5 MiB (etcd's limit) plus the review wrapper
  keepAliveTimeoutMs: 65000, // 65 seconds: longer than the API server's idle connection reuse
  minTlsVersion: 'TLSv1.2' as const
}

const RESULTS: readonly AdmissionResult[] = ['injected', 'skipped', 'denied', 'error']

export interface WebhookOptions {
  tlsCertFile: string
  tlsKeyFile: string
  /** Injection config file; built-in defaults without it. */
  configFile?: string
  logger: Logger
  reloadIntervalMs?: number
  maxBodyBytes?: number
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
  sendJson(res, err.statusCode, JSON.stringify({ error: err.message, code: err.code }))
}

/**
 * The plain-HTTP server of `/metrics` and health. `metrics` gives the exposition text: one
 * registry's, or in cluster mode the primary's sum over every worker's registry.
 */
export function createMetricsServer (metrics: () => Promise<string>, contentType: string, log: Logger): HttpServer {
  return createHttpServer((req, res) => {
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
}

export function build (opts: WebhookOptions): Webhook {
  const log = opts.logger
  const reloadIntervalMs = opts.reloadIntervalMs ?? DEFAULTS.reloadIntervalMs
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULTS.maxBodyBytes

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
  for (const r of RESULTS) admissions.labels(r).inc(0)

  const server = createHttpsServer({ ...tlsOptions(tls), keepAliveTimeout: DEFAULTS.keepAliveTimeoutMs }, (req, res) => { handle(req, res) })
  server.on('tlsClientError', (err) => { log.debug({ err: err.message }, 'TLS handshake failed') })

  const bodyErrors: BodyErrors = {
    tooLarge: () => errors.BODY_TOO_LARGE(maxBodyBytes),
    hungUp: (detail) => errors.BAD_REVIEW(`the client closed the connection before sending the whole body (${detail})`)
  }

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
    const raw = await readBody(req, maxBodyBytes, bodyErrors)
    let body: unknown
    try {
      body = JSON.parse(raw.toString('utf8'))
    } catch (err) {
      throw errors.BAD_REVIEW(`the body is not JSON: ${(err as Error).message}`)
    }
    const outcome = admit(body, config)
    sendJson(res, 200, outcome.json)
    record(outcome, started)
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
      log.warn({ err: (err as Error).message }, 'cannot read the injection config; keeping the current one')
      return
    }
    const print = fingerprint(text)
    if (print === configPrint || failed.has(print)) return
    try {
      config = parseInjectionConfig(text, opts.configFile)
    } catch (err) {
      failed.add(print)
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

  function listenOn (s: HttpServer | HttpsServer, port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      s.once('error', reject)
      s.listen(port, host, () => {
        s.off('error', reject)
        resolve((s.address() as AddressInfo).port)
      })
    })
  }

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
      const port = await listenOn(server, l.port, l.host ?? '0.0.0.0')
      if (l.metricsPort === undefined) return { port }
      const metricsPort = await listenOn(metricsServer, l.metricsPort, l.metricsHost ?? '0.0.0.0')
      log.info({ port, metricsPort, image: config.image }, 'injector listening')
      return { port, metricsPort }
    },
    async close () {
      clearInterval(timer)
      await Promise.all([closeServer(server), closeServer(metricsServer)])
    }
  }
}
