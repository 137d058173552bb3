/**
 * What the webhook counts and logs: a registry of its own per webhook (never the global
 * one), the admission counter and latency histogram, the overload, reload-failure and
 * connection-cap counters, the request memory gauge, and one log line per admission.
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client'
import type { ByteBudget } from '../common/byte-budget.js'
import type { Logger } from '../common/logger.js'
import type { AdmissionOutcome, AdmissionResult } from './admission.js'
import type { ReloadFile } from './webhook-files.js'
import type { ConnectionState, SheddableState } from './webhook-connections.js'

const RESULTS: readonly AdmissionResult[] = ['injected', 'skipped', 'denied', 'error']
const RELOAD_FILES: readonly ReloadFile[] = ['tls', 'config']
const SHED_STATES: readonly SheddableState[] = ['handshaking', 'idle']
/** Admission latency buckets, in seconds (0.5 ms to 1 s). */
const DURATION_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

/** What one answered review contributes to the metrics and the log. */
export type Recorded = Pick<AdmissionOutcome, 'uid' | 'namespace' | 'pod' | 'result' | 'reason' | 'warnings' | 'error'>

export class WebhookMetrics {
  readonly registry = new Registry()
  #log: Logger
  #admissions: Counter<'result'>
  #duration: Histogram
  #overloaded: Counter
  #reloadFailures: Counter<'file'>
  #shed: Counter<'state'>
  #refused: Counter

  /**
   * `budget`: the request memory, read by the gauge when Prometheus scrapes; `logDropped`: the
   * log lines the logger has dropped so far (createLogger's onDrop), read likewise.
   */
  constructor (budget: ByteBudget, log: Logger, logDropped: () => number = () => 0) {
    const registers = [this.registry]
    this.#log = log
    collectDefaultMetrics({ register: this.registry })
    this.#admissions = new Counter({ name: 'onnx_sidecar_injector_admissions_total', help: 'AdmissionReviews answered, by result (injected, skipped, denied, error)', labelNames: ['result'], registers })
    this.#duration = new Histogram({ name: 'onnx_sidecar_injector_admission_duration_seconds', help: 'Time from request to AdmissionReview response', buckets: DURATION_BUCKETS_SECONDS, registers })
    this.#overloaded = new Counter({ name: 'onnx_sidecar_injector_overloaded_total', help: 'Reviews refused with 503 because reviews in flight held the request memory (--request-memory)', registers })
    const inFlight: Gauge = new Gauge({ name: 'onnx_sidecar_injector_request_memory_bytes', help: 'Bytes reserved by reviews being read and parsed (at most --request-memory)', registers, collect: () => { inFlight.set(budget.used) } })
    this.#reloadFailures = new Counter({ name: 'onnx_sidecar_injector_reload_failures_total', help: 'Changed certificate/key (file="tls") or injection config (file="config") files that could not be read or loaded; the previous ones stay in use', labelNames: ['file'], registers })
    this.#shed = new Counter({ name: 'onnx_sidecar_injector_connections_shed_total', help: 'Connections closed to make room for a new one at the connection cap (--max-connections), by state (handshaking: TLS not finished; idle: no request in flight)', labelNames: ['state'], registers })
    this.#refused = new Counter({ name: 'onnx_sidecar_injector_connections_refused_total', help: 'New connections closed at once at the connection cap (--max-connections) because every open one had a request in flight', registers })
    let dropped = 0
    new Counter({ name: 'onnx_sidecar_injector_log_dropped_total', help: 'Log lines dropped because stdout was not taking them and 4 MiB of lines were already waiting', registers, collect () { const n = logDropped(); if (n > dropped) this.inc(n - dropped); dropped = n } }) // registered; read at scrape time
    for (const r of RESULTS) this.#admissions.labels(r).inc(0)
    for (const f of RELOAD_FILES) this.#reloadFailures.labels(f).inc(0)
    for (const s of SHED_STATES) this.#shed.labels(s).inc(0)
  }

  /** Counts and logs an answered review; `started` is `process.hrtime.bigint()` when it arrived. */
  admission (outcome: Recorded, started: bigint): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    this.#admissions.labels(outcome.result).inc()
    this.#duration.observe(seconds)
    const fields = {
      uid: outcome.uid,
      namespace: outcome.namespace,
      pod: outcome.pod,
      result: outcome.result,
      reason: outcome.reason,
      warnings: outcome.warnings.length,
      durationMs: Math.round(seconds * 1e6) / 1e3
    }
    if (outcome.error !== undefined) this.#log.error({ ...fields, err: outcome.error }, 'admission failed')
    else this.#log.info(fields, 'admission')
  }

  overloaded (): void { this.#overloaded.inc() }

  reloadFailed (file: ReloadFile): void { this.#reloadFailures.labels(file).inc() }

  /** The open connections by state (`counts`), read when Prometheus scrapes. */
  watchConnections (counts: () => Record<ConnectionState, number>): void {
    const open: Gauge<'state'> = new Gauge({ name: 'onnx_sidecar_injector_connections', help: 'HTTPS connections open, by state (handshaking: TLS not finished; idle: no request in flight; active); at most --max-connections', labelNames: ['state'], registers: [this.registry], collect: () => { for (const [state, n] of Object.entries(counts())) open.labels(state).set(n) } })
  }

  connectionShed (state: SheddableState): void { this.#shed.labels(state).inc() }

  connectionRefused (): void { this.#refused.inc() }
}
