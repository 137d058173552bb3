/**
 * The Argo Rollouts AnalysisTemplates and Flagger MetricTemplates of deploy/monitoring run
 * against the e2e's Prometheus (e2e/workloads/prometheus.ts: the shop's pods scraped every
 * 2 s, the PrometheusRule's recording rules loaded) during the fleet rollout of ads
 * (e2e/fleet-rollout.ts), rendered as the engines render them (e2e/template-render.ts).
 *
 *   good candidate    every query answers from the evidence; with the load paused,
 *                     Prometheus's raw counters summed over the 3 pods equal `rollout
 *                     status -o json`'s pooled requests, rows, agreement and effective rows
 *                     exactly; the templates' bounds are the Wilson interval (the
 *                     sidecar's own functions) of the sums the recording rules pooled; those
 *                     sums are within what increase() explains of status's.
 *   halved candidate  every query answers; Argo would fail the analysis and Flagger fail a
 *                     check, on something other than latency (noisy on this machine).
 */
import { expect, sleep, waitFor } from './lib.js'
import { type Json } from './context.js'
import { promQuery, startPrometheus } from './workloads/prometheus.js'
import { argoPhase, fleetQueries, flaggerPasses, monitoringDocs, withoutFallback, type FleetRollout, type TemplateQuery } from './template-render.js'
import { EVIDENCE_STATS, pooledEffectiveRows, type EvidenceSums } from '../sidecar/rollout/evidence.js'
import { wilson } from '../sidecar/rollout/stats.js'

/** The queries that decide on agreement (their bounds are compared with the pooled statistic). */
const ARGO_BOUNDS = 'argo onnx-sidecar-agreement/agreement-bounds'
const FLAGGER_LOWER = 'flagger onnx-sidecar-agreement-lower-bound'
const FLAGGER_UPPER = 'flagger onnx-sidecar-agreement-upper-bound'
/**
 * increase(...[1d]) of a counter that appeared during the rollout misses the value of its
 * first scrape (what a pod counted before Prometheus first saw the series: up to one
 * discovery refresh plus a 2 s scrape) and extrapolates up to about one scrape interval
 * ahead, so after a minute of evidence its pooled rows read some % low or high. Exactness
 * is asserted on the raw counters and on the statistic of the same sums instead.
 */
const INCREASE_ROWS_TOLERANCE = 0.25
const INCREASE_AGREEMENT_TOLERANCE = 0.02
/** Evidence gathered before the comparison, so the first scrape's share stays small. */
const MIN_EVIDENCE_MS = 60_000

/** `rollout status <deployment> -o json` of the rollout. */
export type StatusJson = () => Promise<Json>

interface Measured { q: TemplateQuery, values: number[], fromEvidence: boolean, why: string }

const fmt = (x: number): string => String(Math.round(x * 1e4) / 1e4)
const selector = (r: FleetRollout): string => `namespace="${r.namespace}", model="${r.model}", live_version="${r.live}", candidate_version="${r.candidate}"`

function queriesFor (r: FleetRollout, port: number): { z: number, queries: TemplateQuery[] } {
  return fleetQueries(monitoringDocs('argo-analysis-templates.yaml'), monitoringDocs('flagger-metric-templates.yaml'), r, `http://127.0.0.1:${port}`)
}

/**
 * Every query at `time`: a non-empty vector of finite values (Flagger: exactly one), and
 * answered from the evidence rather than its `or on () vector(N)` fallback, except a test
 * that needs 5 candidate errors while the candidate has fewer, and the calibration guard
 * when rollout status says the deciding output is not a probability output (the sidecar
 * then collects no calibration evidence, and the guard's fallback 0 is its documented
 * answer).
 */
async function measure (queries: TemplateQuery[], status: Json, time?: number): Promise<Measured[]> {
  const candidateErrors = Number(status.pooled.errors.candidate.errors)
  const noProbabilities = status.pooled.calibration === null
  const out: Measured[] = []
  for (const q of queries) {
    const values = (await promQuery(q.query, time)).map(s => Number(s.value[1]))
    expect(values.length > 0, `${q.label}: an empty vector`)
    expect(values.every(Number.isFinite), `${q.label}: ${JSON.stringify(values)} (not all finite)`)
    expect(q.engine === 'argo' || values.length === 1, `${q.label}: ${values.length} values, Flagger reads one`)
    const left = withoutFallback(q.query)
    const fromEvidence = left === undefined || (await promQuery(left, time)).length > 0
    const errorGated = q.query.includes('onnx_sidecar:rollout_errors:increase1d') && candidateErrors < 5
    const calibrationGated = q.query.includes('onnx_sidecar:rollout_calibration_ratio') && noProbabilities
    expect(fromEvidence || errorGated || calibrationGated, `${q.label}: answered by its fallback, not from the evidence`)
    out.push({ q, values, fromEvidence, why: calibrationGated ? 'no probability output' : 'under 5 candidate errors' })
  }
  return out
}

function verdicts (measured: Measured[]): Array<{ label: string, values: number[], outcome: string, fails: boolean, latency: boolean }> {
  return measured.map(({ q, values, fromEvidence, why }) => {
    const fallback = fromEvidence ? '' : ` (its fallback: ${why})`
    const latency = q.query.includes('onnx_sidecar:rollout_latency')
    if (q.argo !== undefined) {
      const phase = argoPhase(q.argo, values)
      expect(phase !== 'Error', `${q.label}: its conditions cannot be evaluated on ${JSON.stringify(values)}`)
      return { label: q.label, values, outcome: phase + fallback, fails: phase === 'Failed', latency }
    }
    if (q.range === null || q.range === undefined) return { label: q.label, values, outcome: 'no range' + fallback, fails: false, latency }
    const pass = flaggerPasses(values[0] as number, q.range)
    return { label: q.label, values, outcome: (pass ? 'pass' : 'fail') + fallback, fails: !pass, latency }
  })
}

const summary = (v: ReturnType<typeof verdicts>): string => v.map(x => `${x.label.replace(/^(argo|flagger) onnx-sidecar-/, '$1 ')} ${x.values.length === 1 ? fmt(x.values[0] as number) : `[${x.values.map(fmt).join(', ')}]`} ${x.outcome}`).join('; ')

async function pooledStatus (status: StatusJson): Promise<Json> {
  const s = await status()
  expect(s.pods.length > 0 && s.pods.every((p: Json) => p.error === undefined), `rollout status: unreadable pods ${JSON.stringify(s.pods)}`)
  return s
}

/** Prometheus's raw counters of the rollout summed over pods, and the number of pods. */
async function rawSums (r: FleetRollout, time?: number): Promise<{ sums: EvidenceSums, pods: number }> {
  const samples = await promQuery(`sum by (stat) (onnx_sidecar_rollout_evidence_total{${selector(r)}})`, time)
  const pods = await promQuery(`count(count by (pod) (onnx_sidecar_rollout_evidence_total{${selector(r)}}))`, time)
  return { sums: sumsOf(samples.map(s => [s.metric.stat, s.value[1]])), pods: Number(pods[0]?.value[1] ?? 0) }
}

function sumsOf (pairs: Array<[string | undefined, string]>): EvidenceSums {
  const m = new Map(pairs)
  return Object.fromEntries(EVIDENCE_STATS.map(s => {
    const v = m.get(s)
    if (v === undefined) throw new Error(`no ${s} in ${JSON.stringify(pairs)}`)
    return [s, Number(v)]
  })) as EvidenceSums
}

/**
 * The good candidate, while it is observed under load (`pause`/`resume` hold the load).
 * Returns the summary line.
 */
export async function templatesOnGood (r: FleetRollout, status: StatusJson, load: { pause: () => void, resume: () => void }): Promise<string> {
  const started = Date.now()
  const { z, queries } = queriesFor(r, await startPrometheus())
  await waitFor(`the ${queries.length} template queries to answer from the evidence of ${r.deployment} (and ${MIN_EVIDENCE_MS / 1000} s of it)`, async () => {
    const s = await pooledStatus(status)
    await measure(queries, s)
    return Date.now() - started >= MIN_EVIDENCE_MS
  }, { timeoutMs: 300_000, intervalMs: 3000 })

  load.pause()
  let settled: Json
  let raw: { sums: EvidenceSums, pods: number }
  let at: number
  let measured: Measured[]
  let increase: EvidenceSums
  try {
    // Shadow runs finish after their answers: wait until two reads 3 s apart agree.
    settled = await waitFor('rollout status to settle with the load paused', async () => {
      const a = await pooledStatus(status)
      await sleep(3000)
      const b = await pooledStatus(status)
      return a.pooled.requests === b.pooled.requests && a.pooled.rows === b.pooled.rows ? b : undefined
    }, { timeoutMs: 90_000 })
    const scraped = await waitFor('Prometheus to scrape the settled evidence of every pod', async () => {
      const x = await rawSums(r)
      return x.sums.requests === settled.pooled.requests && x.sums.rows === settled.pooled.rows && x.pods === settled.pods.length ? Date.now() / 1000 : undefined
    }, { timeoutMs: 60_000, intervalMs: 1000 })
    // The recording rules (evaluated every 30 s) once after that scrape; every query at that evaluation.
    at = await waitFor('a rule evaluation after that scrape', async () => {
      const ts = Number((await promQuery(`timestamp(onnx_sidecar:rollout_evidence:increase1d{${selector(r)}, stat="requests"})`))[0]?.value[1] ?? 0)
      return ts > scraped ? ts : undefined
    }, { timeoutMs: 120_000, intervalMs: 2000 })
    raw = await rawSums(r, at)
    measured = await measure(queries, settled, at)
    increase = sumsOf((await promQuery(`onnx_sidecar:rollout_evidence:increase1d{${selector(r)}}`, at)).map(s => [s.metric.stat, s.value[1]]))
  } finally {
    load.resume()
  }

  // Prometheus holds exactly the evidence rollout status pooled.
  const p = settled.pooled
  expect(raw.sums.requests === p.requests && raw.sums.rows === p.rows, `raw counters in Prometheus: ${raw.sums.requests} requests, ${raw.sums.rows} rows; rollout status: ${String(p.requests)}, ${String(p.rows)}`)
  expect(Math.abs(raw.sums.agreeing / raw.sums.rows - p.agreement) <= 1e-12, `raw agreement ${raw.sums.agreeing / raw.sums.rows}, rollout status ${String(p.agreement)}`)
  const rawEffective = pooledEffectiveRows(raw.sums)
  expect(Math.abs(rawEffective - p.effective_rows) <= 1e-9 * p.effective_rows, `effective rows from the raw counters ${rawEffective}, rollout status ${String(p.effective_rows)}`)
  // The templates compute the rollout's statistic (the sidecar's functions) of the sums the rules pooled.
  const eff = pooledEffectiveRows(increase)
  const want = wilson(increase.agreeing / increase.rows * eff, eff, z)
  const byLabel = new Map(measured.map(m => [m.q.label, m.values]))
  const close = (got: number | undefined, w: number): boolean => got !== undefined && Math.abs(got - w) <= 1e-9
  const bounds = byLabel.get(ARGO_BOUNDS)
  expect(bounds?.length === 2 && close(bounds[0], want.lower) && close(bounds[1], want.upper), `${ARGO_BOUNDS}: ${JSON.stringify(bounds)}, the Wilson bounds of the pooled sums at z ${z}: [${want.lower}, ${want.upper}]`)
  expect(close(byLabel.get(FLAGGER_LOWER)?.[0], want.lower), `${FLAGGER_LOWER}: ${JSON.stringify(byLabel.get(FLAGGER_LOWER))}, want ${want.lower}`)
  expect(close(byLabel.get(FLAGGER_UPPER)?.[0], want.upper), `${FLAGGER_UPPER}: ${JSON.stringify(byLabel.get(FLAGGER_UPPER))}, want ${want.upper}`)
  // And increase() pooled what status pooled, up to its first scrape and extrapolation.
  const rowsRatio = increase.rows / p.rows
  const agreementGap = increase.agreeing / increase.rows - p.agreement
  expect(Math.abs(rowsRatio - 1) <= INCREASE_ROWS_TOLERANCE, `recording rule rows ${increase.rows} against rollout status ${String(p.rows)} (x ${fmt(rowsRatio)})`)
  expect(Math.abs(agreementGap) <= INCREASE_AGREEMENT_TOLERANCE, `recording rule agreement ${increase.agreeing / increase.rows} against rollout status ${String(p.agreement)}`)
  const statusBounds = wilson(p.agreement * p.effective_rows, p.effective_rows, z)
  return `templates on ${r.model} ${r.candidate} (Prometheus, ${raw.pods} pods, load paused; ${queries.length} queries): ${summary(verdicts(measured))}; ` +
    `raw counters = rollout status (${raw.sums.requests} requests, ${raw.sums.rows} rows, agreement ${fmt(p.agreement)}, ${fmt(rawEffective)} effective rows); ` +
    `rules' increase(): ${fmt(increase.rows)} rows (x ${fmt(rowsRatio)}), agreement ${fmt(increase.agreeing / increase.rows)}; bounds = Wilson of those sums at z ${z} (status's sums give [${fmt(statusBounds.lower)}, ${fmt(statusBounds.upper)}])`
}

/** The halved candidate: the templates would abort it (Argo fails the analysis, Flagger a check), on more than latency. */
export async function templatesOnHalved (r: FleetRollout, status: StatusJson): Promise<string> {
  const { queries } = queriesFor(r, await startPrometheus())
  const v = await waitFor(`the ${queries.length} template queries to answer from the evidence of ${r.deployment}'s halved candidate`, async () => {
    const s = await pooledStatus(status)
    // Every query at one instant: one evaluation of the recording rules.
    return verdicts(await measure(queries, s, Date.now() / 1000))
  }, { timeoutMs: 300_000, intervalMs: 3000 })
  const failedArgo = v.filter(x => x.label.startsWith('argo ') && x.fails)
  const failedFlagger = v.filter(x => x.label.startsWith('flagger ') && x.fails)
  expect(failedArgo.some(x => !x.latency), `no Argo metric fails the halved candidate on agreement, errors or calibration: ${summary(v)}`)
  expect(failedFlagger.some(x => !x.latency), `no Flagger check fails the halved candidate on agreement, errors or calibration: ${summary(v)}`)
  return `templates on the halved ${r.model} ${r.candidate}: ${summary(v)}; Argo fails ${failedArgo.map(x => x.label.slice(5)).join(', ')}; Flagger fails ${failedFlagger.map(x => x.label.slice(8)).join(', ')}`
}
