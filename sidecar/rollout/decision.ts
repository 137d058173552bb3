/**
 * The promotion rule at one decision point, as a pure function of the evidence: what
 * RolloutController applies inside a pod and what `onnx-sidecar rollout status` applies to
 * the evidence pooled across a Deployment's pods. Counts go in, an action and its reason
 * come out (controller.ts explains the rule).
 */
import type { PromotionRule } from '../models/config-types.js'
import { errorsWorse, lookAlpha, wilson, z } from './stats.js'

export interface ArmCounts { requests: number, errors: number }

export interface DecisionInput {
  rule: PromotionRule
  /** compare.max_calibration_drift. */
  maxCalibrationDrift: number
  /** The decision point's index (0 at min_requests, 1 at 2x, ...): it sets the confidence. */
  look: number
  /** Compared requests so far. */
  compared: number
  rows: number
  /** Agreeing rows / rows (0 without rows). */
  agreement: number
  /** Rows that count as independent trials (stats.ts effectiveRows). */
  effective: number
  arms: { live: ArmCounts, candidate: ArmCounts }
  /** Both versions' p99 (ms) on the same inputs; undefined with too few pairs. */
  p99: { live: number, candidate: number } | undefined
  /** Probabilities: mean candidate / mean live of the worst class; undefined otherwise. */
  calibration: { class: number, ratio: number } | undefined
}

export interface Verdict {
  /** undefined: keep observing. */
  action: 'promote' | 'rollback' | 'inconclusive' | undefined
  why: string
  confidence: number
  lower: number
  upper: number
}

/** The index of the latest decision point at or below `compared` requests (-1 before the first): min_requests x 2^k, the last at max_requests. */
export function lookAt (rule: Pick<PromotionRule, 'minRequests' | 'maxRequests'>, compared: number): number {
  let look = -1
  while (look < 64 && Math.min(rule.maxRequests, rule.minRequests * 2 ** (look + 1)) <= compared) {
    look++
    if (rule.minRequests * 2 ** look >= rule.maxRequests) break
  }
  return look
}

/**
 * The error test at `confidence`: the reason to roll back when the candidate's error rate
 * is above live's + max_error_rate_delta (one-sided, at least min_errors errors), else
 * undefined. `decide` runs it at each decision point; between them a pod (controller.ts)
 * and the fleet (cluster/rollout/judge.ts) run it at its own points, counted in candidate answers.
 */
export function errorsRollback (rule: Pick<PromotionRule, 'maxErrorRateDelta' | 'minErrors'>, arms: { live: ArmCounts, candidate: ArmCounts }, confidence: number): string | undefined {
  const { live, candidate } = arms
  if (!errorsWorse(candidate.errors, candidate.requests, live.errors, live.requests, rule.maxErrorRateDelta, rule.minErrors, z(confidence))) return undefined
  const rate = (a: ArmCounts): number => a.requests === 0 ? 0 : a.errors / a.requests
  return `candidate error rate ${fmt(rate(candidate))} > live ${fmt(rate(live))} + ${rule.maxErrorRateDelta} (${candidate.errors} errors in ${candidate.requests}, one-sided test at confidence ${fmt(confidence)})`
}

/** The rule at decision point `look`: rollback (errors, upper bound, calibration, latency), promote (lower bound), inconclusive at max_requests, else undefined. */
export function decide (e: DecisionInput): Verdict {
  const rule = e.rule
  const confidence = 1 - lookAlpha(1 - rule.confidence, e.look)
  const zv = z(confidence)
  const n = e.effective
  const { lower, upper } = wilson(e.agreement * n, n, zv)
  const rate = (a: ArmCounts): number => a.requests === 0 ? 0 : a.errors / a.requests
  const { live, candidate } = e.arms
  const p99 = e.p99
  const cal = e.calibration
  const drift = e.maxCalibrationDrift
  const over = `over ${e.rows} rows (${fmt(n)} effective) of ${e.compared} requests at confidence ${fmt(confidence)}`
  const bounds = `agreement ${fmt(e.agreement)}, bounds [${fmt(lower)}, ${fmt(upper)}]`
  const verdict = (action: Verdict['action'], why: string): Verdict => ({ action, why, confidence, lower, upper })
  const errors = errorsRollback(rule, e.arms, confidence)
  if (errors !== undefined) return verdict('rollback', errors)
  if (upper < rule.rollbackBelow) return verdict('rollback', `${bounds}: upper bound < ${rule.rollbackBelow} ${over}`)
  if (cal !== undefined && !(Math.abs(cal.ratio - 1) <= drift)) {
    return verdict('rollback', `calibration: mean candidate / mean live probability of class ${cal.class} is ${fmt(cal.ratio)}, outside 1 +- ${drift}`)
  }
  if (p99 !== undefined && p99.candidate > rule.maxLatencyRatio * p99.live + rule.latencySlackMs) {
    return verdict('rollback', `latency: candidate p99 ${fmt(p99.candidate)} ms > ${rule.maxLatencyRatio} x live p99 ${fmt(p99.live)} ms + ${rule.latencySlackMs} ms`)
  }
  if (lower >= rule.minAgreement) {
    return verdict('promote', `${bounds}: lower bound >= min_agreement ${rule.minAgreement} ${over}; candidate error rate ${fmt(rate(candidate))} vs live ${fmt(rate(live))}` +
      (p99 === undefined ? '' : `; p99 ${fmt(p99.candidate)} vs ${fmt(p99.live)} ms`))
  }
  if (e.compared >= rule.maxRequests) {
    return verdict('inconclusive', `${bounds}: neither below ${rule.rollbackBelow} nor above min_agreement ${rule.minAgreement} ${over}; max_requests ${rule.maxRequests} reached`)
  }
  return verdict(undefined, `${bounds}: neither below ${rule.rollbackBelow} nor above min_agreement ${rule.minAgreement} ${over}`)
}

export function fmt (x: number): string {
  return String(Math.round(x * 1e6) / 1e6)
}
