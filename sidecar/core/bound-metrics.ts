/**
 * Counters and histograms for the request path, with label sets bound once.
 *
 * prom-client's labelled `observe` and `inc` check the labels, hash them into a string and
 * look the series up by it on every call, even through a `labels()` child. A request
 * counted its status and three durations that way, and a batch its size. On one CPU (iris
 * at one connection, ~180 µs of main-thread CPU a request) leaving those metrics out
 * altogether saved 8-10 µs a request; bound as here, they cost a bucket search and three
 * additions each (bench/results/2026-12-07-request-path.md). `labels()` returns the series
 * object itself, made once per label set.
 *
 * The metrics stay prom-client's to everyone else: they register in a prom-client
 * `Registry` and answer `get()` (and `getForPromString()`, what the registry writes the text
 * format from) in prom-client's own shape, so `/metrics` is byte for byte what prom-client's
 * `Histogram` and `Counter` wrote (test/sidecar/core/bound-metrics.test.ts compares them).
 * Label names are fixed at construction; values are the caller's (model names, versions,
 * status codes: all bounded, see metrics.ts).
 */
import type { Registry } from 'prom-client'

type Labels<L extends string> = Record<L, string>

/** A value as prom-client's metrics give them to the registry. */
interface Value {
  value: number
  labels: Record<string, string | number>
  /** The series' labels, written after `labels` (a histogram's `le` first). */
  sharedLabels?: Record<string, string>
  metricName?: string
  /** Always null or undefined here (no exemplars), present as in prom-client's values. */
  exemplar?: null
}

/** What prom-client's `get()` and `getForPromString()` answer. */
export interface MetricData {
  name: string
  help: string
  type: 'counter' | 'histogram'
  values: Value[]
  aggregator: 'sum'
}

interface Options<L extends string> {
  name: string
  help: string
  labelNames: readonly L[]
  registers: Registry[]
}

/** What a series is found by: its label values in `labelNames` order. */
function keyOf<L extends string> (names: readonly L[], labels: Labels<L>): string {
  let key = ''
  for (const n of names) {
    const v = labels[n]
    if (typeof v !== 'string') throw new TypeError(`metric label ${n} must be a string, got ${typeof v}`)
    key += v + '\u0000'
  }
  return key
}

/**
 * The labels a series keeps: a copy in `labelNames` order (prom-client keeps the first
 * caller's key order; the sidecar always passes them in that order), extra keys refused.
 */
function ownLabels<L extends string> (metric: string, names: readonly L[], labels: Labels<L>): Labels<L> {
  for (const k of Object.keys(labels)) {
    if (!names.includes(k as L)) throw new Error(`Added label "${k}" is not included in initial labelset: ${JSON.stringify(names)} (metric ${metric})`)
  }
  const out = {} as Labels<L>
  for (const n of names) out[n] = labels[n]
  return out
}

abstract class BoundMetric<L extends string, S> {
  readonly name: string
  readonly help: string
  readonly aggregator = 'sum' as const
  abstract readonly type: MetricData['type']
  protected readonly labelNames: readonly L[]
  protected series = new Map<string, { labels: Labels<L>, series: S }>()

  constructor (opts: Options<L>) {
    this.name = opts.name
    this.help = opts.help
    this.labelNames = opts.labelNames
    for (const r of opts.registers) r.registerMetric(this as never)
  }

  protected abstract create (): S

  /** The series for these labels, made on the first call (it shows in `/metrics` once counted). */
  labels (labels: Labels<L>): S {
    const key = keyOf(this.labelNames, labels)
    let s = this.series.get(key)
    if (s === undefined) {
      s = { labels: ownLabels(this.name, this.labelNames, labels), series: this.create() }
      this.series.set(key, s)
    }
    return s.series
  }

  /**
   * Zeroes every series in place (they leave `/metrics` until counted again, as
   * prom-client's do after a reset): a series bound before still counts afterwards.
   */
  reset (): void {
    for (const { series } of this.series.values()) this.clear(series)
  }

  protected abstract clear (series: S): void

  abstract getForPromString (): Promise<MetricData>

  /** As prom-client's `get()`: every value with all its labels in `labels`. */
  async get (): Promise<MetricData> {
    const m = await this.getForPromString()
    return {
      ...m,
      values: m.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }))
    }
  }
}

/** One label set's count. */
export class CounterSeries {
  value = 0
  /** Counted at least once: shown in `/metrics` (prom-client shows a series from its first `inc`). */
  used = false

  inc (by = 1): void {
    if (!(by >= 0) || !Number.isFinite(by)) throw new Error(`counter increments must be finite and not negative, got ${by}`)
    this.value += by
    this.used = true
  }
}

export class BoundCounter<L extends string> extends BoundMetric<L, CounterSeries> {
  readonly type = 'counter'

  protected create (): CounterSeries {
    return new CounterSeries()
  }

  protected clear (s: CounterSeries): void {
    s.value = 0
    s.used = false
  }

  async getForPromString (): Promise<MetricData> {
    const values = [...this.series.values()].filter(s => s.series.used).map(({ labels, series }) => ({ value: series.value, labels }))
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }
}

/** One label set's buckets: `counts[i]` observations in (bounds[i-1], bounds[i]]; above the last bound, only `count`. */
export class HistogramSeries {
  readonly counts: Float64Array
  sum = 0
  count = 0
  /** Observed at least once: shown in `/metrics` (prom-client shows a series from its first `observe`). */
  used = false
  readonly #bounds: readonly number[]

  constructor (bounds: readonly number[]) {
    this.#bounds = bounds
    this.counts = new Float64Array(bounds.length)
  }

  observe (value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`)
    const b = this.#bounds
    let i = 0
    while (i < b.length && value > (b[i] as number)) i++
    if (i < b.length) (this.counts[i] as number)++
    this.sum += value
    this.count++
    this.used = true
  }
}

export class BoundHistogram<L extends string> extends BoundMetric<L, HistogramSeries> {
  readonly type = 'histogram'
  readonly buckets: readonly number[]

  constructor (opts: Options<L> & { buckets: readonly number[] }) {
    super(opts)
    this.buckets = [...opts.buckets].sort((a, b) => a - b)
  }

  protected create (): HistogramSeries {
    return new HistogramSeries(this.buckets)
  }

  protected clear (s: HistogramSeries): void {
    s.counts.fill(0)
    s.sum = 0
    s.count = 0
    s.used = false
  }

  /** prom-client's layout: per series its cumulative buckets (`le` in `labels`, the series' labels shared), `+Inf`, `_sum`, `_count`. */
  async getForPromString (): Promise<MetricData> {
    const bucket = `${this.name}_bucket`
    const values: Value[] = []
    for (const { labels, series } of this.series.values()) {
      if (!series.used) continue
      let acc = 0
      this.buckets.forEach((le, i) => {
        acc += series.counts[i] as number
        values.push({ value: acc, metricName: bucket, exemplar: null, labels: { le }, sharedLabels: labels })
      })
      values.push({ value: series.count, metricName: bucket, exemplar: null, labels: { le: '+Inf' }, sharedLabels: labels })
      values.push({ value: series.sum, metricName: `${this.name}_sum`, exemplar: undefined, labels: {}, sharedLabels: labels })
      values.push({ value: series.count, metricName: `${this.name}_count`, exemplar: undefined, labels: {}, sharedLabels: labels })
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }
}
