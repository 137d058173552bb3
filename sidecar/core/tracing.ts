/**
 * OpenTelemetry tracing through @opentelemetry/sdk-node, configured by the standard
 * OTEL_* variables (exporter, endpoint, sampler, resource attributes). Off unless an
 * exporter is configured, so a default sidecar does no tracing work at all. Tests pass
 * their own span processor (an in-memory exporter).
 */
import { trace, propagation, context, ROOT_CONTEXT, type Context, type Tracer } from '@opentelemetry/api'
import type { NodeSDK as NodeSDKType, tracing } from '@opentelemetry/sdk-node'
import type { IncomingHttpHeaders } from 'node:http'
import { createRequire } from 'node:module'

export interface Tracing {
  /** Undefined when tracing is off, so the request path skips span work entirely. */
  tracer: Tracer | undefined
  shutdown: () => Promise<void>
}

export function startTracing (opts: { enabled: boolean, serviceName?: string, spanProcessors?: tracing.SpanProcessor[] }): Tracing {
  if (!opts.enabled) {
    return { tracer: undefined, shutdown: async () => {} }
  }
  // Loaded only when tracing is on: the SDK costs ~8 MiB and startup time otherwise.
  const { NodeSDK } = createRequire(import.meta.url)('@opentelemetry/sdk-node') as { NodeSDK: typeof NodeSDKType }
  const sdk = new NodeSDK({
    serviceName: opts.serviceName ?? 'onnx-sidecar',
    instrumentations: [],
    // Metrics and logs have their own paths (Prometheus, pino); only traces go out over OTLP.
    metricReaders: [],
    logRecordProcessors: [],
    ...(opts.spanProcessors !== undefined ? { spanProcessors: opts.spanProcessors } : {})
  })
  sdk.start()
  return {
    tracer: trace.getTracer('onnx-sidecar'),
    shutdown: async () => { await sdk.shutdown() }
  }
}

/** The caller's trace context from a W3C `traceparent` header, if any. */
export function extractContext (headers: IncomingHttpHeaders): Context {
  return propagation.extract(ROOT_CONTEXT, headers)
}

export { context, trace }
