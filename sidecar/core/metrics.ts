/**
 * The sidecar's Prometheus metrics, in a registry of its own (never prom-client's
 * global one, so tests and embedders can build several apps in one process).
 * Names and labels are a contract (docs/operations.md "Metrics"); label values are model
 * names and versions from the repository, and status codes: all bounded.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { BoundCounter, BoundHistogram, type CounterSeries } from './bound-metrics.js'

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] // seconds
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
/**
 * The event-loop delay histogram samples with a libuv timer at this period. prom-client's
 * 10 ms default woke an idle sidecar 100 times a second: most of its idle CPU (issue 13).
 * A blocked loop still shows in full: the sample after it measures the whole delay.
 */
export const EVENT_LOOP_PRECISION_MS = 100
const LOAD_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] // seconds

export interface SidecarMetrics {
  registry: Registry
  // The request path's metrics (bound-metrics.ts): the rest are prom-client's own.
  requests: BoundCounter<'model' | 'version' | 'code'>
  requestDuration: BoundHistogram<'model' | 'version'>
  queueDuration: BoundHistogram<'model' | 'version'>
  computeDuration: BoundHistogram<'model' | 'version'>
  batchSize: BoundHistogram<'model' | 'version'>
  modelReady: Gauge<'model' | 'version'>
  modelLoadDuration: Histogram<'model' | 'version'>
  modelLoadFailures: Counter<'model'>
  logDropped: Counter
}

export interface VersionMetrics {
  requestDuration: { observe: (v: number) => void }
  queueDuration: { observe: (v: number) => void }
  computeDuration: { observe: (v: number) => void }
  request: (code: number) => void
}

const perVersion = new WeakMap<SidecarMetrics, Map<string, Map<string, VersionMetrics>>>()

/**
 * The label-bound series for one model version, cached by model, then version (no key
 * string built per call): twice per request.
 */
export function versionMetrics (m: SidecarMetrics, model: string, version: string): VersionMetrics {
  let byModel = perVersion.get(m)
  if (byModel === undefined) {
    byModel = new Map()
    perVersion.set(m, byModel)
  }
  let byVersion = byModel.get(model)
  if (byVersion === undefined) {
    byVersion = new Map()
    byModel.set(model, byVersion)
  }
  let vm = byVersion.get(version)
  if (vm === undefined) {
    const labels = { model, version }
    const codes = new Map<number, CounterSeries>()
    vm = {
      requestDuration: m.requestDuration.labels(labels),
      queueDuration: m.queueDuration.labels(labels),
      computeDuration: m.computeDuration.labels(labels),
      request: (code: number) => {
        let c = codes.get(code)
        if (c === undefined) {
          c = m.requests.labels({ ...labels, code: String(code) })
          codes.set(code, c)
        }
        c.inc()
      }
    }
    byVersion.set(version, vm)
  }
  return vm
}

/**
 * `logDropped`: how many log lines the logger has dropped so far (stdout held back its
 * cap, common/log-destination.ts); read when Prometheus scrapes. Without it the counter stays 0.
 */
export function createSidecarMetrics (opts: { defaultMetrics?: boolean, logDropped?: () => number } = {}): SidecarMetrics {
  const registry = new Registry()
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS })
  const registers = [registry]
  return {
    registry,
    requests: new BoundCounter({ name: 'onnx_sidecar_inference_requests_total', help: 'Inference requests by model, version and HTTP status code.', labelNames: ['model', 'version', 'code'], registers }),
    requestDuration: new BoundHistogram({ name: 'onnx_sidecar_inference_request_duration_seconds', help: 'Time from request received to response sent.', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers }),
    queueDuration: new BoundHistogram({ name: 'onnx_sidecar_inference_queue_duration_seconds', help: 'Time a request waited in the batching queue.', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers }),
    computeDuration: new BoundHistogram({ name: 'onnx_sidecar_inference_compute_duration_seconds', help: 'ONNX Runtime session.run time of the batch that carried the request.', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers }),
    batchSize: new BoundHistogram({ name: 'onnx_sidecar_inference_batch_size', help: 'Rows per executed batch.', labelNames: ['model', 'version'], buckets: BATCH_BUCKETS, registers }),
    modelReady: new Gauge({ name: 'onnx_sidecar_model_ready', help: '1 when the model version is loaded and serving.', labelNames: ['model', 'version'], registers }),
    modelLoadDuration: new Histogram({ name: 'onnx_sidecar_model_load_duration_seconds', help: 'Time to load and warm up a model version.', labelNames: ['model', 'version'], buckets: LOAD_BUCKETS, registers }),
    modelLoadFailures: new Counter({ name: 'onnx_sidecar_model_load_failures_total', help: 'Model versions or configs that failed to load (the previous version keeps serving).', labelNames: ['model'], registers }),
    logDropped: logDroppedCounter(opts.logDropped ?? (() => 0), registers)
  }
}

/** A counter that follows a count kept elsewhere (the logger's), read at scrape time. */
function logDroppedCounter (read: () => number, registers: Registry[]): Counter {
  let counted = 0
  return new Counter({
    name: 'onnx_sidecar_log_dropped_total',
    help: 'Log lines dropped because stdout was not taking them and 4 MiB of lines were already waiting.',
    registers,
    collect () {
      const n = read()
      if (n > counted) this.inc(n - counted)
      counted = n
    }
  })
}

/** Gauges read at scrape time: what requests in flight hold of the request memory, and its size. */
export function trackRequestMemory (m: SidecarMetrics, budget: { used: number, capacity: number }): { used: Gauge, limit: Gauge } {
  const registers = [m.registry]
  const used = new Gauge({ name: 'onnx_sidecar_request_memory_used_bytes', help: 'Bytes that requests being read, decoded, queued and run hold of the request memory (--request-memory).', registers, collect () { this.set(budget.used) } })
  const limit = new Gauge({ name: 'onnx_sidecar_request_memory_limit_bytes', help: 'The request memory (--request-memory): beyond it requests get 503 OS_ERR_MEMORY_BUSY.', registers })
  limit.set(budget.capacity)
  return { used, limit }
}
