/**
 * One inference call, whatever protocol carried it: resolve the model version, decode and
 * validate the request, queue it on the version's batcher, encode the answer; with the
 * spans, metrics and log lines every call gets. REST (`http/app.ts`) and gRPC
 * (`grpc/service.ts`) differ only in how they read a request and write a response, which
 * they pass in as `read`, `decode` and `encode`.
 *
 * Metrics count every call under the HTTP-equivalent status (`code` label: 200, 400, 404,
 * 499, 503, ...) so one dashboard covers both protocols.
 */
import { INVALID_SPAN_CONTEXT, SpanKind, SpanStatusCode, type Context, type Tracer } from '@opentelemetry/api'
import type { Logger } from '../common/logger.js'
import { errors, SidecarError } from './errors.js'
import type { InferRequest } from './infer-request.js'
import type { ModelManager } from './model-manager.js'
import type { ModelVersion } from './model-version.js'
import { versionMetrics, type SidecarMetrics } from './metrics.js'
import { AbandonedError } from './runtime/batcher.js'
import type { WireTensor } from './runtime/protocol.js'
import type { Rollouts, Routed } from './rollout/rollouts.js'
import { trace } from './tracing.js'

export type Protocol = 'rest' | 'grpc'

export interface InferenceCall<Raw, Encoded> {
  protocol: Protocol
  model: string
  /** As the client gave it; undefined or '' for the version policy's pick. */
  version: string | undefined
  requestId: string
  /** Trace context of the caller (ROOT_CONTEXT when tracing is off or nothing came in). */
  parent: Context
  /** Reads the request (body, message); runs before the model is resolved. */
  read: () => Promise<Raw> | Raw
  /** Validates `raw` against the model version; throws 400s. */
  decode: (raw: Raw, mv: ModelVersion) => InferRequest
  encode: (mv: ModelVersion, request: InferRequest, outputs: Record<string, WireTensor>) => Encoded
  /** True once nobody waits for the answer (client gone, call cancelled). */
  abandoned: () => boolean
  /** A deadline the transport imposes (gRPC), absolute hrtime ns; 0n for none. */
  deadlineNs?: bigint
  /** A request header (REST) or metadata value (gRPC) by lower-case name: a canary's sticky key. */
  header?: (name: string) => string | undefined
}

export interface InferenceDeps {
  manager: ModelManager
  metrics: SidecarMetrics
  logger: Logger
  /** Undefined when tracing is off. */
  tracer: Tracer | undefined
  /** Shadow / canary rollouts (rollout/rollouts.ts); undefined: none. */
  rollouts?: Rollouts
}

const NOOP_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT)

/** The HTTP-equivalent status of a failed call (metrics, logs, REST replies). */
export function statusOf (err: unknown): number {
  if (err instanceof AbandonedError) return err.statusCode
  if (err instanceof SidecarError) return err.statusCode
  return 500
}

export class Inference {
  #deps: InferenceDeps
  #log: Logger

  constructor (deps: InferenceDeps) {
    this.#deps = deps
    this.#log = deps.logger.child({ component: 'inference' })
  }

  /**
   * Runs one call. Resolves with the encoded response; rejects with a `SidecarError`,
   * an `AbandonedError`, or (a bug) anything else, which the transport answers as an
   * internal error. Either way the call is already counted, traced and logged.
   */
  async run<Raw, Encoded> (call: InferenceCall<Raw, Encoded>): Promise<Encoded> {
    const { manager, metrics, tracer } = this.#deps
    const started = process.hrtime.bigint()
    // With tracing off there is no tracer: no span objects at all.
    const span = tracer === undefined ? NOOP_SPAN : tracer.startSpan('inference', { kind: SpanKind.SERVER, attributes: call.protocol === 'grpc' ? { 'onnx_sidecar.model': call.model, 'rpc.system': 'grpc' } : { 'onnx_sidecar.model': call.model } }, call.parent)
    const spanCtx = tracer === undefined ? call.parent : trace.setSpan(call.parent, span)
    let mv: ModelVersion | undefined
    let status = 200
    let routed: Routed | undefined
    let outputs: Record<string, WireTensor> | undefined
    const pinned = call.version === '' ? undefined : call.version
    const rollouts = pinned === undefined ? this.#deps.rollouts : undefined
    try {
      const raw = await call.read()
      mv = rollouts?.live(call.model) ?? manager.resolve(call.model, pinned)
      span.setAttribute('onnx_sidecar.version', mv.version)
      const tracing = tracer !== undefined && span.isRecording()
      const pre = tracing ? tracer.startSpan('preprocess', {}, spanCtx) : undefined
      let request: InferRequest
      try {
        request = call.decode(raw, mv)
      } finally {
        pre?.end()
      }
      // A rollout may hand the request to its candidate (canary) and sample it for a shadow run.
      routed = rollouts?.route(mv, request, call, span)
      if (routed !== undefined && routed.mv !== mv) {
        mv = routed.mv
        span.setAttribute('onnx_sidecar.version', mv.version)
      }
      const enqueuedNs = process.hrtime.bigint()
      const requested = request.timeoutUs > 0 ? enqueuedNs + BigInt(request.timeoutUs) * 1000n : 0n
      const transport = call.deadlineNs ?? 0n
      const result = await mv.batcher.submit({
        rows: request.rows,
        feeds: request.feeds,
        fetches: mv.outputs.map(o => o.name),
        enqueuedNs,
        deadlineNs: requested === 0n ? transport : transport === 0n ? requested : (requested < transport ? requested : transport),
        abandoned: call.abandoned
      })
      // Queue and compute happened on the batcher and a worker thread; record them with their real times.
      if (tracing) {
        const t0 = Date.now() - Number(process.hrtime.bigint() - enqueuedNs) / 1e6
        const queueEnd = t0 + result.queueNs / 1e6
        tracer.startSpan('queue', { startTime: t0 }, spanCtx).end(queueEnd)
        tracer.startSpan('inference.compute', { startTime: queueEnd, attributes: { 'onnx_sidecar.batch_rows': result.batchRows } }, spanCtx).end(queueEnd + result.computeNs / 1e6)
      }
      const vm = versionMetrics(metrics, mv.name, String(mv.version))
      vm.queueDuration.observe(result.queueNs / 1e9)
      vm.computeDuration.observe(result.computeNs / 1e9)
      const post = tracing ? tracer.startSpan('postprocess', {}, spanCtx) : undefined
      outputs = result.outputs
      try {
        return call.encode(mv, request, result.outputs)
      } finally {
        post?.end()
      }
    } catch (err) {
      status = statusOf(err)
      const serverFault = status >= 500 && status !== 503 && status !== 504
      if (serverFault) span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message })
      if (status === 500 && !(err instanceof SidecarError)) {
        this.#log.error({ reqId: call.requestId, protocol: call.protocol, model: call.model, err }, 'unexpected error')
        throw errors.INTERNAL()
      }
      this.#log[serverFault ? 'error' : 'info']({ reqId: call.requestId, protocol: call.protocol, model: call.model, version: mv?.version, status, code: (err as SidecarError).code, reason: (err as Error).message }, 'inference request failed')
      throw err
    } finally {
      span.setAttribute(call.protocol === 'grpc' ? 'rpc.grpc.status_code' : 'http.response.status_code', call.protocol === 'grpc' ? grpcCodeOfStatus(status) : status)
      span.end()
      routed?.finish(status, outputs, spanCtx)
      const vm = versionMetrics(metrics, mv?.name ?? (manager.has(call.model) ? call.model : '_unknown'), mv === undefined ? '' : String(mv.version))
      vm.request(status)
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      if (mv !== undefined) vm.requestDuration.observe(seconds)
      if (status < 400) this.#log.debug({ reqId: call.requestId, protocol: call.protocol, model: call.model, version: mv?.version, status, durationMs: seconds * 1000 }, 'inference')
    }
  }
}

/**
 * gRPC status code (numbers from grpc's status.proto) for an HTTP-equivalent status.
 * Lives here rather than in grpc/ so spans can carry it without loading grpc-js.
 */
export function grpcCodeOfStatus (status: number): number {
  switch (status) {
    case 200: return 0 // OK
    case 400: return 3 // INVALID_ARGUMENT
    case 404: return 5 // NOT_FOUND
    case 413: return 8 // RESOURCE_EXHAUSTED
    case 499: return 1 // CANCELLED
    case 503: return 14 // UNAVAILABLE (overloaded, not ready, shutting down: retry)
    case 504: return 4 // DEADLINE_EXCEEDED
    case 405: return 12 // UNIMPLEMENTED
    default: return 13 // INTERNAL
  }
}
