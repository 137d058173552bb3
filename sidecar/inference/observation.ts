/**
 * What every inference call gets, whatever protocol carried it and however it ended:
 * the server span and its children (preprocess, queue, compute, postprocess), the
 * request, queue and compute metrics, and the log line. `InferenceObserver.observe()`
 * wraps a call; the transport and the runner report to its `Observation` (the version
 * that answers, each step, the batch's times) and never touch spans or metrics themselves.
 *
 * Metrics count every call under the HTTP-equivalent status (`code` label: 200, 400, 404,
 * 499, 503, ...) so one dashboard covers both protocols.
 */
import { INVALID_SPAN_CONTEXT, SpanKind, SpanStatusCode, type Context, type Span, type Tracer } from '@opentelemetry/api'
import type { Logger } from '../../common/logger.js'
import { grpcCodeOfStatus, statusOf } from './call-status.js'
import { errors, SidecarError } from '../core/errors.js'
import { MAX_NAME_BYTES, shown } from '../core/client-strings.js'
import { versionMetrics, type SidecarMetrics } from '../core/metrics.js'
import type { ModelVersion } from '../models/model-version.js'
import type { JobResult } from '../runtime/batcher.js'
import type { WireTensor } from '../runtime/protocol.js'
import { trace } from '../core/tracing.js'

export type Protocol = 'rest' | 'grpc'

/** What the observation needs to know about a call. */
export interface ObservedCall {
  protocol: Protocol
  model: string
  requestId: string
  /** Trace context of the caller (ROOT_CONTEXT when tracing is off or nothing came in). */
  parent: Context
  /** The sidecar's own warm-up (http/warmup.ts): not traced, logged or counted in the served metrics, unless it fails with an internal error. */
  quiet?: boolean
}

/** Runs once a call has ended (span ended, before metrics): its status, the outputs of a 200, its trace context. */
export type EndHook = (status: number, outputs: Record<string, WireTensor> | undefined, ctx: Context) => void

/** One call being observed. */
export interface Observation {
  /** The server span (a non-recording one when tracing is off). */
  readonly span: Span
  /** The version that answers the call (called again when a rollout hands it to another). */
  answeredBy: (mv: ModelVersion) => void
  /** Runs a step of the call in a child span of that name (when traced). */
  step: <T>(name: string, fn: () => T) => T
  /** The batch that carried the call came back: its queue and compute times; `enqueuedNs` when it was queued. */
  batched: (result: JobResult, enqueuedNs: bigint) => void
  /** Runs `hook` once the call has ended. */
  onEnd: (hook: EndHook) => void
}

export interface ObserverDeps {
  metrics: SidecarMetrics
  logger: Logger
  /** Undefined when tracing is off: then no span objects at all. */
  tracer: Tracer | undefined
  /** Whether a model name is known (unknown ones are counted under `_unknown`, never as a label value). */
  known: (model: string) => boolean
  /**
   * Where quiet calls (the warm-up's) are counted: metrics in a registry nobody scrapes, so
   * that they run the code a client's call runs and V8 compiles it during the warm-up.
   * Undefined: not counted at all.
   */
  quietMetrics?: SidecarMetrics
}

const NOOP_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT)
const NS_PER_MS = 1e6
const NS_PER_S = 1e9

export class InferenceObserver {
  #deps: ObserverDeps
  #log: Logger
  /**
   * The metrics a call is counted in: [a client's, a quiet call's]. Picked by index, so a
   * quiet call and a client's run the same property reads: a branch the warm-up never took
   * would be a deoptimisation on the first client's request (measured with --trace-deopt).
   */
  #counted: Array<SidecarMetrics | undefined>

  constructor (deps: ObserverDeps) {
    this.#deps = deps
    this.#log = deps.logger.child({ component: 'inference' })
    this.#counted = [deps.metrics, deps.quietMetrics]
  }

  /**
   * Runs `fn` as one observed call. Resolves with its value; rejects with a `SidecarError`
   * or an `AbandonedError`; anything else (a bug) is logged and becomes an internal error.
   * Either way the call is counted, traced and logged when this settles.
   */
  async observe<T> (call: ObservedCall, fn: (obs: Observation) => Promise<T>): Promise<T> {
    const { tracer } = this.#deps
    const started = process.hrtime.bigint()
    // The model as the client named it (an unknown one may be long): bounded in spans and log lines.
    const model = typeof call.model === 'string' ? shown(call.model, MAX_NAME_BYTES) : call.model
    const quiet = call.quiet === true
    const metrics = this.#counted[quiet ? 1 : 0]
    const span = tracer === undefined || quiet
      ? NOOP_SPAN
      : tracer.startSpan('inference', { kind: SpanKind.SERVER, attributes: call.protocol === 'grpc' ? { 'onnx_sidecar.model': model, 'rpc.system': 'grpc' } : { 'onnx_sidecar.model': model } }, call.parent)
    const ctx = tracer === undefined || quiet ? call.parent : trace.setSpan(call.parent, span)
    const traced = tracer !== undefined && span.isRecording() ? tracer : undefined
    let mv: ModelVersion | undefined
    let outputs: Record<string, WireTensor> | undefined
    let status = 200
    const hooks: EndHook[] = []
    const obs: Observation = {
      span,
      answeredBy: v => {
        mv = v
        span.setAttribute('onnx_sidecar.version', v.version)
      },
      step: (name, run) => {
        const child = traced?.startSpan(name, {}, ctx)
        try {
          return run()
        } finally {
          child?.end()
        }
      },
      batched: (result, enqueuedNs) => {
        outputs = result.outputs
        // Queue and compute happened on the batcher and a worker thread; record them with their real times.
        if (traced !== undefined) {
          const t0 = Date.now() - Number(process.hrtime.bigint() - enqueuedNs) / NS_PER_MS
          const queueEnd = t0 + result.queueNs / NS_PER_MS
          traced.startSpan('queue', { startTime: t0 }, ctx).end(queueEnd)
          traced.startSpan('inference.compute', { startTime: queueEnd, attributes: { 'onnx_sidecar.batch_rows': result.batchRows } }, ctx).end(queueEnd + result.computeNs / NS_PER_MS)
        }
        if (mv !== undefined && metrics !== undefined) {
          const vm = versionMetrics(metrics, mv.name, String(mv.version))
          vm.queueDuration.observe(result.queueNs / NS_PER_S)
          vm.computeDuration.observe(result.computeNs / NS_PER_S)
        }
      },
      onEnd: hook => { hooks.push(hook) }
    }
    try {
      return await fn(obs)
    } catch (err) {
      status = statusOf(err)
      const serverFault = status >= 500 && status !== 503 && status !== 504
      if (serverFault) span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message })
      if (status === 500 && !(err instanceof SidecarError)) {
        this.#log.error({ reqId: call.requestId, protocol: call.protocol, model, err }, 'unexpected error')
        throw errors.INTERNAL()
      }
      if (serverFault || !quiet) this.#log[serverFault ? 'error' : 'info']({ reqId: call.requestId, protocol: call.protocol, model, version: mv?.version, status, code: (err as SidecarError).code, reason: (err as Error).message }, 'inference request failed')
      throw err
    } finally {
      span.setAttribute(call.protocol === 'grpc' ? 'rpc.grpc.status_code' : 'http.response.status_code', call.protocol === 'grpc' ? grpcCodeOfStatus(status) : status)
      span.end()
      for (const hook of hooks) hook(status, status === 200 ? outputs : undefined, ctx)
      if (metrics !== undefined) {
        const vm = versionMetrics(metrics, mv?.name ?? (this.#deps.known(call.model) ? call.model : '_unknown'), mv === undefined ? '' : String(mv.version))
        vm.request(status)
        const seconds = Number(process.hrtime.bigint() - started) / NS_PER_S
        if (mv !== undefined) vm.requestDuration.observe(seconds)
        // The line's object only when it is written: at the default level, nothing per request.
        if (status < 400 && this.#log.isLevelEnabled('debug') && !quiet) this.#log.debug({ reqId: call.requestId, protocol: call.protocol, model, version: mv?.version, status, durationMs: seconds * 1000 }, 'inference')
      }
    }
  }
}
