/**
 * The inference HTTP server: Open Inference Protocol v2 REST on loopback.
 * `buildRestApp(deps)` returns unstarted `http.Server`s; the caller listens.
 * The routes are the table below; this file decodes and encodes, the runner
 * (`../inference.ts`) executes and the observer (`../observation.ts`) traces and counts.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import { ROOT_CONTEXT, type Tracer } from '@opentelemetry/api'
import { send, sendError, sendJson } from '../../common/http.js'
import type { Logger } from '../../common/logger.js'
import { errors, SidecarError } from '../core/errors.js'
import { decodeInferRequest } from '../codec/infer-request.js'
import { encodeInferResponse } from '../codec/infer-response.js'
import type { InferCall, InferenceDispatcher } from '../inference/dispatcher.js'
import type { ModelManager } from '../models/model-manager.js'
import type { InferenceObserver } from '../inference/observation.js'
import type { RequestLease, RequestMemory } from '../codec/request-memory.js'
import { AbandonedError } from '../core/errors.js'
import { extractContext } from '../core/tracing.js'
import { parseInferBody, readRequestBody } from './body.js'
import { serverMetadata, modelMetadata, modelReady, health, sidecarReady } from '../inference/metadata.js'
import { pathOf, Router, type Route } from './router.js'
import { requestIdOf } from '../inference/request-id.js'
import type { SharedMemoryRegions } from '../shm/regions.js'
import { sharedMemoryRoutes } from './shared-memory-routes.js'
import type { WarmupState } from './warmup.js'

/** What the rollout endpoint reads: a model's rollout state as JSON (the wiring passes `Rollouts`). */
export interface RolloutStates {
  state: (model: string) => object
}

export interface RestAppDeps {
  manager: ModelManager
  runner: InferenceDispatcher
  observer: InferenceObserver
  /** GET /v2/models/{m}/rollout reads their state; undefined answers 'off'. */
  rollouts?: RolloutStates
  logger: Logger
  /** Undefined when tracing is off: then no trace context is extracted. */
  tracer: Tracer | undefined
  bodyLimit: number
  /** Memory that requests in flight share; each request charges its body and tensors to it. */
  memory: RequestMemory
  /** True once shutdown began: readiness fails and new requests get 503. */
  isShuttingDown: () => boolean
  version: string
  /** Registered system shared memory regions (Triton's extension); undefined: a request naming one is a 400. */
  sharedMemory?: SharedMemoryRegions
  /** The warm-up before ready (warmup.ts): not ready while it runs; its requests are quiet. Undefined: none. */
  warmup?: WarmupState
}

export interface RestApp {
  /** The TCP listener (loopback). */
  server: http.Server
  /** The same API for a Unix domain socket (`--socket-dir`); unused unless it listens. */
  socketServer: http.Server
  /** Requests being handled right now. */
  inFlight: () => number
  /** Resolves when no request is in flight. */
  idle: () => Promise<void>
}

const HEADERS_TIMEOUT_MS = 10_000 // 10 seconds to send request headers
const REQUEST_TIMEOUT_MS = 120_000 // 2 minutes for a whole request, body included
const KEEP_ALIVE_TIMEOUT_MS = 65_000 // 65 seconds idle keep-alive (longer than common client pools' 60 s)
const INDEX_BODY_LIMIT = 64 * 1024 // 64 KiB: the repository index takes at most {"ready": true}

/** What a handler gets: the exchange and the request's id. */
interface Exchange {
  req: IncomingMessage
  res: ServerResponse
  requestId: string
}

/** A route under `/v2/models/:model` and `/v2/models/:model/versions/:version`. */
function versioned (method: Route<Exchange>['method'], suffix: string, handle: (x: Exchange, model: string, version: string | undefined) => Promise<void> | void): Array<Route<Exchange>> {
  return [
    { method, path: `/v2/models/:model${suffix}`, handle: (x, p) => handle(x, p.model as string, undefined) },
    { method, path: `/v2/models/:model/versions/:version${suffix}`, handle: (x, p) => handle(x, p.model as string, p.version) }
  ]
}

export function buildRestApp (deps: RestAppDeps): RestApp {
  const log = deps.logger.child({ component: 'http' })
  const { manager } = deps
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

  const facts = { isShuttingDown: deps.isShuttingDown, isWarming: () => deps.warmup?.warming === true, manager }
  const ready = (): boolean => sidecarReady(facts)

  const router = new Router<Exchange>([
    { method: 'GET', path: '/v2', handle: ({ res }) => sendJson(res, 200, serverMetadata(deps.version)) },
    {
      method: 'GET',
      path: '/v2/health/:which',
      handle: ({ req, res }, p) => {
        const h = health(p.which as string, ready)
        if (h === undefined) throw errors.NOT_FOUND(req.method ?? 'GET', pathOf(req.url ?? '/'))
        sendJson(res, h.status, h.body)
      }
    },
    { method: 'POST', path: '/v2/repository/index', handle: repositoryIndex },
    ...versioned('GET', '', ({ res }, model, version) => sendJson(res, 200, modelMetadata(manager, model, version))),
    ...versioned('GET', '/ready', ({ res }, model, version) => {
      const ok = modelReady(manager, model, version)
      sendJson(res, ok ? 200 : 503, { name: model, ready: ok })
    }),
    {
      method: 'GET',
      path: '/v2/models/:model/rollout',
      handle: ({ res }, p) => {
        const model = p.model as string
        if (!manager.has(model)) throw errors.MODEL_NOT_FOUND(model)
        sendJson(res, 200, deps.rollouts?.state(model) ?? { name: model, state: 'off' })
      }
    },
    ...(deps.sharedMemory === undefined ? [] : sharedMemoryRoutes(deps.sharedMemory)),
    ...versioned('POST', '/infer', (x, model, version) => {
      if (deps.isShuttingDown()) throw errors.SHUTTING_DOWN()
      // The body may be left unread on purpose (too large, memory busy): replied to here, without resume().
      return infer(x, model, version).catch(err => { reply(x.res, err, x.requestId) })
    })
  ])

  async function repositoryIndex ({ req, res }: Exchange): Promise<void> {
    const body = await readRequestBody(req, Math.min(deps.bodyLimit, INDEX_BODY_LIMIT))
    let readyOnly = false
    if (body.length > 0) {
      const parsed = parseInferBody(body, undefined).json as { ready?: unknown }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw errors.BAD_REQUEST(`the repository index body must be a JSON object (such as {"ready": true}) or empty, got ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : `a ${typeof parsed}`}`)
      }
      if (parsed.ready !== undefined && typeof parsed.ready !== 'boolean') throw errors.BAD_REQUEST('ready must be a boolean')
      readyOnly = parsed.ready === true
    }
    sendJson(res, 200, manager.index().filter(e => !readyOnly || e.state === 'READY'))
  }

  async function infer ({ req, res, requestId }: Exchange, model: string, version: string | undefined): Promise<void> {
    // Everything the request holds (body, parsed JSON, tensors) stays charged until its answer is written.
    let lease: RequestLease | undefined
    res.once('close', () => lease?.release())
    const call: InferCall = {
      protocol: 'rest',
      model,
      version,
      requestId,
      // With tracing off there is no context to extract.
      parent: deps.tracer === undefined ? ROOT_CONTEXT : extractContext(req.headers),
      abandoned: () => res.destroyed || req.socket.destroyed,
      // A repeated header: its first value (node:http would join them with ', '), as gRPC metadata.
      header: name => req.headersDistinct[name]?.[0],
      quiet: deps.warmup?.isOwn(req.url)
    }
    const encoded = await deps.observer.observe(call, async obs => {
      lease = deps.memory.open(0)
      const parsed = parseInferBody(await readRequestBody(req, deps.bodyLimit, lease), req.headers['inference-header-content-length'])
      const mv = deps.runner.resolve(call, obs)
      const request = obs.step('preprocess', () => decodeInferRequest(parsed.json, parsed.binary, mv, lease, deps.sharedMemory))
      const answer = await deps.runner.execute(mv, request, call, obs)
      return obs.step('postprocess', () => encodeInferResponse(answer.mv, request, answer.outputs, deps.sharedMemory))
    })
    send(res, 200, encoded.body, encoded.headers)
  }

  function reply (res: ServerResponse, err: unknown, requestId: string): void {
    if (err instanceof AbandonedError) {
      res.destroy()
      return
    }
    if (err instanceof SidecarError) {
      // A body too large is left unread: close the connection rather than read the rest.
      sendError(res, err, err.statusCode === 413 ? { connection: 'close' } : {})
      return
    }
    log.error({ reqId: requestId, err }, 'unexpected error')
    sendError(res, errors.INTERNAL())
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    active++
    res.once('close', finished)
    const requestId = requestIdOf(req.headers['x-request-id'], () => String(nextId++))
    const failed = (err: unknown): void => {
      reply(res, err, requestId)
      req.resume()
    }
    try {
      const { route, params } = router.match(req.method ?? 'GET', pathOf(req.url ?? '/'))
      route.handle({ req, res, requestId }, params)?.catch(failed)
    } catch (err) {
      failed(err)
    }
  }
  const newServer = (): http.Server => {
    const server = http.createServer({
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS
    }, handle)
    server.on('clientError', (err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      else socket.destroy(err)
    })
    return server
  }

  return {
    server: newServer(),
    socketServer: newServer(),
    inFlight: () => active,
    idle: () => (active === 0 ? Promise.resolve() : new Promise(resolve => idleWaiters.push(resolve)))
  }
}
