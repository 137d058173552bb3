/**
 * The pod's statistics applied to pooled evidence (evidence.ts): agreement, effective rows
 * (requests as clusters, from the exported sums), the error counts of both arms, the
 * calibration of probability outputs and both versions' p99 from the latency histograms,
 * then the promotion rule of sidecar/rollout/decision.ts at the latest decision point the
 * pooled requests have reached (min_requests x 1, 2, 4, ..., max_requests).
 */
import type { PromotionRule } from '../../sidecar/models/config-types.js'
import { decide, errorsRollback, lookAt, type Verdict } from '../../sidecar/rollout/decision.js'
import { MIN_LATENCY_PAIRS, pooledEffectiveRows, worstCalibration } from '../../sidecar/rollout/evidence.js'
import { lookAlpha } from '../../sidecar/rollout/stats.js'
import type { Arm, Buckets, Evidence } from './evidence.js'

export interface Thresholds extends PromotionRule {
  maxCalibrationDrift: number
}

export interface Judgement {
  requests: number
  rows: number
  agreement: number
  effective: number
  arms: Record<Arm, { requests: number, errors: number }>
  p99: { live: number, candidate: number } | undefined
  calibration: { class: number, ratio: number } | undefined
  /** The decision point reached (-1: fewer than min_requests compared). */
  look: number
  verdict: Verdict
}

/** Effective rows from the pooled sums: exactly what one tally of every pod's requests gives (sidecar/rollout/evidence.ts). */
export function effective (s: Evidence['sums']): number {
  return pooledEffectiveRows(s)
}

/** The q-quantile of a cumulative histogram in milliseconds, interpolated within its bucket as PromQL's histogram_quantile does. */
export function histogramQuantile (b: Buckets, q: number): number {
  const total = b.count > 0 ? b.count : (b.counts[b.counts.length - 1] ?? 0)
  if (total === 0) return NaN
  const rank = q * total
  let lowerBound = 0
  let lowerCount = 0
  for (let i = 0; i < b.bounds.length; i++) {
    const le = b.bounds[i] as number
    const count = b.counts[i] as number
    if (count >= rank) {
      if (le === Infinity) return lowerBound * 1000
      return (lowerBound + (le - lowerBound) * (count === lowerCount ? 0 : (rank - lowerCount) / (count - lowerCount))) * 1000
    }
    lowerBound = le
    lowerCount = count
  }
  return lowerBound * 1000
}

function calibration (e: Evidence): Judgement['calibration'] {
  return worstCalibration(e.probabilitySums.live, e.probabilitySums.candidate, e.sums.probability_rows)
}

export function judge (e: Evidence, t: Thresholds): Judgement {
  const s = e.sums
  const arms = {
    live: { requests: e.answers.live.ok + e.answers.live.error, errors: e.answers.live.error },
    candidate: { requests: e.answers.candidate.ok + e.answers.candidate.error, errors: e.answers.candidate.error }
  }
  const pairs = Math.min(e.latency.live.count, e.latency.candidate.count)
  const p99 = pairs < MIN_LATENCY_PAIRS ? undefined : { live: histogramQuantile(e.latency.live, 0.99), candidate: histogramQuantile(e.latency.candidate, 0.99) }
  const base = { requests: s.requests, rows: s.rows, agreement: s.rows === 0 ? 0 : s.agreeing / s.rows, effective: effective(s), arms, p99, calibration: calibration(e) }
  const look = lookAt(t, s.requests)
  if (look < 0) {
    // Before the first decision point on agreement: the error test alone, at its own points counted in candidate answers.
    const errorLook = lookAt(t, arms.candidate.requests)
    const confidence = errorLook < 0 ? t.confidence : 1 - lookAlpha(1 - t.confidence, errorLook)
    const errors = errorLook >= 0 ? errorsRollback(t, arms, confidence) : undefined
    const why = errors ?? `${s.requests} of min_requests ${t.minRequests} requests compared`
    return { ...base, look, verdict: { action: errors !== undefined ? 'rollback' : undefined, why, confidence, lower: 0, upper: 1 } }
  }
  const verdict = decide({ rule: t, maxCalibrationDrift: t.maxCalibrationDrift, look, compared: s.requests, rows: s.rows, agreement: base.agreement, effective: base.effective, arms, p99, calibration: base.calibration })
  return { ...base, look, verdict }
}
