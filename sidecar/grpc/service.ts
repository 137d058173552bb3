/**
 * The handlers of `inference.GRPCInferenceService` (the Open Inference Protocol over
 * gRPC). This file decodes and encodes; inference goes through the same runner
 * (`../inference.ts`) and observer (`../observation.ts`) as REST: same batching,
 * metrics, spans and logs. Errors carry the gRPC status of their HTTP-equivalent
 * (400 → INVALID_ARGUMENT, 404 → NOT_FOUND, 503 → UNAVAILABLE, 504 → DEADLINE_EXCEEDED,
 * 499 → CANCELLED, 500 → INTERNAL) and the same message REST would send.
 *
 * Kept free of the server plumbing (`server.ts`): handlers take plain objects, so the
 * mapping is readable on its own.
 */
import { ROOT_CONTEXT, type Tracer } from '@opentelemetry/api'
import { createRequire } from 'node:module'
import type { Metadata, sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js'
import { errors, SidecarError } from '../core/errors.js'
import { truncateUtf8 } from '../../common/truncate.js'
import { MAX_MESSAGE_BYTES } from '../core/client-strings.js'
import { grpcCodeOfStatus, statusOf } from '../inference/call-status.js'
import type { InferCall, InferenceDispatcher } from '../inference/dispatcher.js'
import type { InferenceObserver } from '../inference/observation.js'
import type { ModelManager } from '../models/model-manager.js'
import { requestIdOf } from '../inference/request-id.js'
import { extractContext } from '../core/tracing.js'
import { modelMetadata, serverMetadata, sidecarReady } from '../inference/metadata.js'
import { leaseOf } from './message-lease.js'
import { decodeGrpcInferRequest, type GrpcInferRequest } from './decode.js'
import { encodeGrpcResponse } from './encode.js'
import type { SharedMemoryRegions } from '../shm/regions.js'

export interface GrpcServiceDeps {
  manager: ModelManager
  runner: InferenceDispatcher
  observer: InferenceObserver
  /** Undefined when tracing is off: then no trace context is read from the metadata. */
  tracer: Tracer | undefined
  isShuttingDown: () => boolean
  /** True while the warm-up before ready runs (http/warmup.ts): not ready. */
  isWarming?: () => boolean
  version: string
  /** Registered system shared memory regions (Triton's extension); undefined: its methods answer 400. */
  sharedMemory?: SharedMemoryRegions
}

export interface GrpcError extends Error {
  code: number
  details: string
  metadata?: Metadata
}

/** A gRPC error for any failure: its status from the HTTP-equivalent, its message as REST would say it. */
function toGrpcError (err: unknown): GrpcError {
  const status = statusOf(err)
  // SidecarError messages are bounded already; the cut keeps every status message within one header (grpc-message).
  const message = truncateUtf8(err instanceof SidecarError ? err.message : status === 499 ? 'the call was cancelled' : errors.INTERNAL().message, MAX_MESSAGE_BYTES)
  const out = Object.assign(new Error(message), { code: grpcCodeOfStatus(status), details: message }) as GrpcError
  if (err instanceof SidecarError && err.headers['retry-after'] !== undefined) {
    // grpc-js loads here, not at start-up: the node:http2 server (h2/) needs it only for this.
    const { Metadata } = createRequire(import.meta.url)('@grpc/grpc-js') as typeof import('@grpc/grpc-js')
    const md = new Metadata()
    md.set('retry-after', err.headers['retry-after'])
    out.metadata = md
  }
  return out
}

type Handler<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void

/** A handler from a plain function of the request; a thrown error becomes the call's status. */
function unary<Req, Res> (fn: (req: Req) => Res): Handler<Req, Res> {
  return (call, callback) => {
    let res: Res
    try {
      res = fn(call.request)
    } catch (err) {
      callback(toGrpcError(err))
      return
    }
    callback(null, res)
  }
}

/** `deadline` as grpc-js reports it (a Date, ms since the epoch, or Infinity) in hrtime ns; 0n for none. */
function deadlineNs (deadline: Date | number): bigint {
  const ms = deadline instanceof Date ? deadline.getTime() : deadline
  if (!Number.isFinite(ms)) return 0n
  return process.hrtime.bigint() + BigInt(Math.max(0, Math.round((ms - Date.now()) * 1e6)))
}

export function grpcService (deps: GrpcServiceDeps): UntypedServiceImplementation {
  const { manager } = deps
  const ready = (): boolean => sidecarReady(deps)
  let nextId = 1
  const sharedMemory = (): SharedMemoryRegions => {
    if (deps.sharedMemory === undefined) throw errors.BAD_REQUEST('system shared memory is not served here')
    return deps.sharedMemory
  }

  const modelInfer: Handler<GrpcInferRequest, unknown> = (call, callback) => {
    const lease = leaseOf(call.request)
    if (deps.isShuttingDown()) {
      lease.done()
      callback(toGrpcError(errors.SHUTTING_DOWN()))
      return
    }
    const md = call.metadata
    const requestId = requestIdOf(md.get('x-request-id')[0], () => `grpc-${nextId++}`)
    const msg = call.request
    const inferCall: InferCall = {
      protocol: 'grpc',
      model: msg.model_name,
      version: msg.model_version,
      requestId,
      parent: deps.tracer === undefined ? ROOT_CONTEXT : extractContext(md.getMap() as Record<string, string>),
      abandoned: () => call.cancelled,
      deadlineNs: deadlineNs(call.getDeadline()),
      header: name => { const v = md.get(name)[0]; return typeof v === 'string' ? v : undefined }
    }
    deps.observer.observe(inferCall, async obs => {
      if (lease.error !== undefined) throw lease.error instanceof Error ? lease.error : new Error(String(lease.error))
      if (msg.model_name === '') throw errors.BAD_REQUEST('model_name must be a non-empty string')
      const mv = deps.runner.resolve(inferCall, obs)
      const request = obs.step('preprocess', () => decodeGrpcInferRequest(msg, mv, lease.lease, deps.sharedMemory))
      const answer = await deps.runner.execute(mv, request, inferCall, obs)
      return obs.step('postprocess', () => encodeGrpcResponse(answer.mv, request, answer.outputs, deps.sharedMemory))
    }).then(res => { lease.done(); callback(null, res) }, err => { lease.done(); callback(toGrpcError(err)) })
  }

  return {
    ServerLive: unary(() => ({ live: true })),
    ServerReady: unary(() => ({ ready: ready() })),
    ServerMetadata: unary(() => serverMetadata(deps.version)),
    // An unknown model or version is "not ready" rather than an error, so Triton's
    // client returns False from is_model_ready() as it does over REST (where it is a 404).
    ModelReady: unary((req: { name: string, version: string }) => ({
      ready: manager.state(req.name, req.version === '' ? undefined : req.version).state === 'READY'
    })),
    ModelMetadata: unary((req: { name: string, version: string }) => {
      const md = modelMetadata(manager, req.name, req.version === '' ? undefined : req.version) as { versions: unknown[] }
      return { ...md, versions: md.versions.map(String) }
    }),
    ModelInfer: modelInfer,
    // Triton's system shared-memory extension: the same registry as REST (shm/regions.ts).
    SystemSharedMemoryStatus: unary((req: { name: string }) => ({
      regions: Object.fromEntries(sharedMemory().status(req.name === '' ? undefined : req.name).map(r => [r.name, { ...r, offset: String(r.offset), byte_size: String(r.byte_size) }]))
    })),
    SystemSharedMemoryRegister: unary((req: { name: string, key: string, offset: string, byte_size: string }) => {
      sharedMemory().register(req.name, req.key, Number(req.offset), Number(req.byte_size))
      return {}
    }),
    SystemSharedMemoryUnregister: unary((req: { name: string }) => {
      sharedMemory().unregister(req.name === '' ? undefined : req.name)
      return {}
    }),
    RepositoryIndex: unary((req: { ready: boolean }) => ({
      models: manager.index()
        .filter(e => !req.ready || e.state === 'READY')
        .map(e => ({ name: e.name, version: e.version === undefined ? '' : String(e.version), state: e.state, reason: e.reason ?? '' }))
    }))
  }
}
