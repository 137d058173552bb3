/**
 * The inference HTTP server: Open Inference Protocol v2 REST on loopback.
 * `buildInferenceApp(deps)` returns an unstarted `http.Server`; the caller listens.
 *
 *   GET  /v2                                   server metadata
 *   GET  /v2/health/live | /v2/health/ready
 *   GET  /v2/models/{m}[/versions/{v}]         model metadata
 *   GET  /v2/models/{m}[/versions/{v}]/ready
 *   POST /v2/models/{m}[/versions/{v}]/infer
 *   POST /v2/repository/index
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import { ROOT_CONTEXT, type Tracer } from '@opentelemetry/api'
import { errorBody } from '../../common/errors.js'
import type { Logger } from '../../common/logger.js'
import { errors, SidecarError } from '../errors.js'
import { decodeInferRequest } from '../infer-request.js'
import { encodeInferResponse } from '../infer-response.js'
import type { Inference } from '../inference.js'
import type { ModelManager } from '../model-manager.js'
import type { RequestLease, RequestMemory } from '../request-memory.js'
import type { Rollouts } from '../rollout/rollouts.js'
import { AbandonedError } from '../runtime/batcher.js'
import { extractContext } from '../tracing.js'
import { parseInferBody, readBody } from './body.js'
import { serverMetadata, modelMetadata, modelReady, health } from './metadata.js'

export interface InferenceAppDeps {
  manager: ModelManager
  inference: Inference
  /** GET /v2/models/{m}/rollout reads their state; undefined answers 'off'. */
  rollouts?: Rollouts
  logger: Logger
  /** Undefined when tracing is off: then no trace context is extracted. */
  tracer: Tracer | undefined
  bodyLimit: number
  /** Memory that requests in flight share; each request charges its body and tensors to it. */
  memory: RequestMemory
  /** True once shutdown began: readiness fails and new requests get 503. */
  isShuttingDown: () => boolean
  version: string
}

export interface InferenceApp {
  /** The TCP listener (loopback). */
  server: http.Server
  /** The same API for a Unix domain socket (`--socket-dir`); unused unless it listens. */
  socketServer: http.Server
  /** Requests being handled right now. */
  inFlight: () => number
  /** Resolves when no request is in flight. */
  idle: () => Promise<void>
}

const HEADERS_TIMEOUT = 10_000 // 10 seconds to send request headers
const REQUEST_TIMEOUT = 120_000 // 2 minutes for a whole request, body included
const KEEP_ALIVE_TIMEOUT = 65_000 // 65 seconds idle keep-alive (longer than common client pools' 60 s)
const INDEX_BODY_LIMIT = 64 * 1024 // 64 KiB: the repository index takes at most {"ready": true}

function send (res: ServerResponse, status: number, body: Buffer | string, headers: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return
  headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength)
  res.writeHead(status, headers)
  // A string body lets node:http put headers and body into a single write.
  res.end(body)
}

export function sendJson (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, JSON.stringify(value), { 'content-type': 'application/json', ...headers })
}

export function buildInferenceApp (deps: InferenceAppDeps): InferenceApp {
  const log = deps.logger.child({ component: 'http' })
  const inference = deps.inference
  let active = 0
  let idleWaiters: Array<() => void> = []
  let nextId = 1

  const finished = (): void => {
    active--
    if (active === 0) {
      const w = idleWaiters
      idleWaiters = []
      for (const f of w) f()
    }
  }

  function infer (req: IncomingMessage, res: ServerResponse, model: string, version: string | undefined, requestId: string): Promise<void> {
    // Everything the request holds (body, parsed JSON, tensors) stays charged until its answer is written.
    let lease: RequestLease | undefined
    res.once('close', () => lease?.release())
    return inference.run({
      protocol: 'rest',
      model,
      version,
      requestId,
      // With tracing off there is no context to extract.
      parent: deps.tracer === undefined ? ROOT_CONTEXT : extractContext(req.headers),
      read: async () => {
        lease = deps.memory.open(0)
        return parseInferBody(await readBody(req, deps.bodyLimit, lease), req.headers['inference-header-content-length'])
      },
      decode: (parsed, mv) => decodeInferRequest(parsed.json, parsed.binary, mv, lease),
      encode: encodeInferResponse,
      abandoned: () => res.destroyed || req.socket.destroyed,
      // A repeated header: its first value (node:http would join them with ', '), as gRPC metadata.
      header: name => req.headersDistinct[name]?.[0]
    }).then(encoded => send(res, 200, encoded.body, encoded.headers), err => { reply(res, err) })
  }

  function reply (res: ServerResponse, err: unknown, requestId?: string): void {
    if (err instanceof AbandonedError) {
      res.destroy()
      return
    }
    if (err instanceof SidecarError) {
      const headers = err.statusCode === 413 ? { ...err.headers, connection: 'close' } : { ...err.headers }
      sendJson(res, err.statusCode, errorBody(err), headers)
      return
    }
    log.error({ reqId: requestId, err }, 'unexpected error')
    sendJson(res, 500, errorBody(errors.INTERNAL()))
  }

  function route (req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> | void {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const parts = path.split('/').filter(p => p !== '').map(p => { try { return decodeURIComponent(p) } catch { return p } })
    const method = req.method ?? 'GET'
    const allow = (m: string): boolean => {
      if (method === m || (m === 'GET' && method === 'HEAD')) return true
      throw errors.METHOD_NOT_ALLOWED(method, path, m)
    }
    if (parts[0] !== 'v2') throw errors.NOT_FOUND(method, path)
    if (parts.length === 1) { allow('GET'); return sendJson(res, 200, serverMetadata(deps.version)) }
    if (parts[1] === 'health' && parts.length === 3) {
      allow('GET')
      const h = health(parts[2] as string, () => !deps.isShuttingDown() && deps.manager.ready())
      if (h === undefined) throw errors.NOT_FOUND(method, path)
      return sendJson(res, h.status, h.body)
    }
    if (parts[1] === 'repository' && parts[2] === 'index' && parts.length === 3) {
      allow('POST')
      return readBody(req, Math.min(deps.bodyLimit, INDEX_BODY_LIMIT)).then(body => {
        let readyOnly = false
        if (body.length > 0) {
          const parsed = parseInferBody(body, undefined).json as { ready?: unknown }
          if (typeof parsed !== 'object' || parsed === null) throw errors.BAD_REQUEST('request body must be a JSON object')
          if (parsed.ready !== undefined && typeof parsed.ready !== 'boolean') throw errors.BAD_REQUEST('ready must be a boolean')
          readyOnly = parsed.ready === true
        }
        sendJson(res, 200, deps.manager.index().filter(e => !readyOnly || e.state === 'READY'))
      })
    }
    if (parts[1] === 'models' && parts.length >= 3) {
      const model = parts[2] as string
      let rest = parts.slice(3)
      let version: string | undefined
      if (rest[0] === 'versions') {
        if (rest.length < 2) throw errors.NOT_FOUND(method, path)
        version = rest[1]
        rest = rest.slice(2)
      }
      if (rest.length === 0) {
        allow('GET')
        return sendJson(res, 200, modelMetadata(deps.manager, model, version))
      }
      if (rest.length === 1 && rest[0] === 'rollout' && version === undefined) {
        allow('GET')
        if (!deps.manager.has(model)) throw errors.MODEL_NOT_FOUND(model)
        return sendJson(res, 200, deps.rollouts?.state(model) ?? { name: model, state: 'off' })
      }
      if (rest.length === 1 && rest[0] === 'ready') {
        allow('GET')
        const ready = modelReady(deps.manager, model, version)
        return sendJson(res, ready ? 200 : 503, { name: model, ready })
      }
      if (rest.length === 1 && rest[0] === 'infer') {
        allow('POST')
        if (deps.isShuttingDown()) throw errors.SHUTTING_DOWN()
        return infer(req, res, model, version, requestId)
      }
    }
    throw errors.NOT_FOUND(method, path)
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    active++
    res.once('close', finished)
    const header = req.headers['x-request-id']
    const requestId = typeof header === 'string' && header.length <= 128 ? header : String(nextId++)
    try {
      const p = route(req, res, requestId)
      if (p !== undefined) {
        p.catch(err => {
          reply(res, err, requestId)
          req.resume()
        })
      }
    } catch (err) {
      reply(res, err, requestId)
      req.resume()
    }
  }
  const newServer = (): http.Server => {
    const server = http.createServer({
      headersTimeout: HEADERS_TIMEOUT,
      requestTimeout: REQUEST_TIMEOUT,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT
    }, handle)
    server.on('clientError', (err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      else socket.destroy(err)
    })
    return server
  }
  const server = newServer()

  return {
    server,
    socketServer: newServer(),
    inFlight: () => active,
    idle: () => (active === 0 ? Promise.resolve() : new Promise(resolve => idleWaiters.push(resolve)))
  }
}

