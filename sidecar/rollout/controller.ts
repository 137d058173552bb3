/**
 * The state of one model's rollout, and the promotion rule. Pure: counts go in,
 * decisions come out; the caller logs, counts and routes.
 *
 *   observing     the candidate runs (shadow or canary) and is compared
 *   promoted      the candidate is the live version now (in memory, until config.yaml changes)
 *   rolled_back   the candidate gets no more traffic
 *   inconclusive  max_requests compared without a decision: live answers, the candidate
 *                 gets no more traffic
 *
 * Evidence is counted per row (rollout/evidence.ts): each compared request adds its rows
 * and agreeing rows (a failed candidate run: its rows, none agreeing). Decision points
 * ("looks") come at min_requests compared requests, then 2x, 4x, ... up to max_requests;
 * look j spends alpha / 2^(j+1) of alpha = 1 - confidence, so all looks together keep
 * each error below alpha. At a look, with the Wilson interval of the agreement over the
 * effective rows (rows within a request are correlated: stats.ts `effectiveRows`):
 *   rollback      the candidate errs more than live + max_error_rate_delta (a one-sided
 *                 two-proportion test, at least min_errors candidate errors), or the
 *                 upper bound is below rollback.below_agreement, or (probabilities) the
 *                 calibration mean p_candidate / mean p_live is outside 1 +- max_calibration_drift,
 *                 or the candidate's p99 latency exceeds max_latency_ratio x live's + slack
 *   promote       the lower bound is at or above min_agreement
 *   inconclusive  neither, at max_requests
 *   otherwise keep observing.
 * A canary's live run for comparison that fails is not the candidate's fault: it is
 * counted apart (`liveFailed`) and not compared. Error rate = answers (canary) or shadow
 * runs (shadow) with a 5xx status / all of them, per arm.
 */
import type { RolloutConfig } from '../models/config-types.js'
import { RowTally } from './evidence.js'
import type { RowEvidence } from './metric-kinds.js'
import { decide, errorsRollback } from './decision.js'
import { lookAlpha, wilson, z } from './stats.js'

export type RolloutPhase = 'observing' | 'promoted' | 'rolled_back' | 'inconclusive'
export type Arm = 'live' | 'candidate'
export type ComparisonResult = 'agree' | 'disagree' | 'error'

export interface Evidence {
  compared: number
  agreed: number
  /** Agreeing rows / rows. */
  agreement: number
  rows: number
  rows_agreed: number
  effective_rows: number
  /** The bounds at this look's confidence. */
  lower: number
  upper: number
  confidence: number
  live_error_rate: number
  candidate_error_rate: number
  latency_p99_ms: { live: number, candidate: number } | null
  calibration: { class: number, ratio: number } | null
  rule: string
}

export interface Decision {
  action: 'promote' | 'rollback' | 'inconclusive'
  version: number
  at: string
  evidence: Evidence
}

export class RolloutController {
  readonly config: RolloutConfig
  phase: RolloutPhase = 'observing'
  compared = 0
  agreed = 0
  disagreed = 0
  failed = 0
  /** Canary: live runs for comparison that failed (not compared). */
  liveFailed = 0
  dropped = 0
  /** `dropped` by reason (rollout/gate.ts): how much of the sampled traffic load kept from the evidence. */
  readonly droppedBy: Record<string, number> = {}
  readonly arms: Record<Arm, { requests: number, errors: number }> = { live: { requests: 0, errors: 0 }, candidate: { requests: 0, errors: 0 } }
  /** Per output: largest max-abs-diff seen and the running sum of mean-abs-diffs. */
  readonly diffs = new Map<string, { max: number, meanSum: number, n: number }>()
  /** Rows, agreeing rows, calibration sums, latency pairs. */
  readonly tally = new RowTally()
  decision: Decision | undefined
  /** The next decision point (compared requests) and its index. */
  #look = 0
  #nextLook: number
  /** The error test's own decision points, counted in candidate answers (a canary whose answers fail compares nothing). */
  #errorLook = 0
  #nextErrorLook: number

  constructor (config: RolloutConfig) {
    this.config = config
    this.#nextLook = config.promotion?.minRequests ?? Infinity
    this.#nextErrorLook = this.#nextLook
  }

  /** The version that answers requests without an explicit version. */
  get liveVersion (): number {
    return this.phase === 'promoted' ? this.config.candidate : this.config.live
  }

  /** Agreeing rows / rows compared (what promotion decides on). */
  get agreement (): number | undefined {
    return this.tally.agreement
  }

  errorRate (arm: Arm): number {
    const a = this.arms[arm]
    return a.requests === 0 ? 0 : a.errors / a.requests
  }

  served (arm: Arm, failed: boolean): void {
    this.arms[arm].requests++
    if (failed) this.arms[arm].errors++
  }

  /**
   * One compared request: its result, per-output differences, the rows it adds (default:
   * one row, agreeing when `result` is agree) and, when measured, both versions' time on it.
   */
  compare (result: ComparisonResult, outputs: Array<{ name: string, maxAbsDiff: number, meanAbsDiff: number }> = [], rows?: Pick<RowEvidence, 'rows' | 'agree' | 'sumLive' | 'sumCandidate'>, latency?: { liveMs: number, candidateMs: number }): void {
    this.compared++
    this.tally.add(rows ?? { rows: 1, agree: result === 'agree' ? 1 : 0 })
    if (latency !== undefined) this.tally.latency(latency.liveMs, latency.candidateMs)
    if (result === 'agree') this.agreed++
    else if (result === 'disagree') this.disagreed++
    else this.failed++
    for (const o of outputs) {
      const d = this.diffs.get(o.name) ?? { max: 0, meanSum: 0, n: 0 }
      d.max = Math.max(d.max, o.maxAbsDiff)
      d.meanSum += o.meanAbsDiff
      d.n++
      this.diffs.set(o.name, d)
    }
  }

  /** Applies the rule at a decision point; returns the decision when one was made now (the phase has changed). */
  evaluate (now = new Date()): Decision | undefined {
    const rule = this.config.promotion
    if (this.phase !== 'observing' || rule === undefined) return undefined
    const a = this.arms
    if (a.candidate.requests >= this.#nextErrorLook && this.compared < this.#nextLook) {
      // Between agreement decision points: the error test alone, at its own.
      const confidence = 1 - lookAlpha(1 - rule.confidence, this.#errorLook++)
      this.#nextErrorLook = rule.minRequests * 2 ** this.#errorLook
      const errors = errorsRollback(rule, a, confidence)
      if (errors !== undefined) return this.#decided('rollback', errors, confidence, now)
    }
    if (this.compared < this.#nextLook) return undefined
    const t = this.tally
    const v = decide({ rule, maxCalibrationDrift: this.config.compare.maxCalibrationDrift, look: this.#look, compared: this.compared, rows: t.rows, agreement: t.agreement ?? 0, effective: t.effective, arms: a, p99: t.p99(), calibration: t.calibration() })
    if (v.action === undefined) {
      this.#look++
      this.#nextLook = Math.min(rule.maxRequests, rule.minRequests * 2 ** this.#look)
      return undefined
    }
    return this.#decided(v.action, v.why, v.confidence, now)
  }

  #decided (action: Decision['action'], why: string, confidence: number, now: Date): Decision {
    const t = this.tally
    const n = t.effective
    const agreement = t.agreement ?? 0
    const { lower, upper } = wilson(agreement * n, n, z(confidence))
    const evidence: Evidence = {
      compared: this.compared,
      agreed: this.agreed,
      agreement,
      rows: t.rows,
      rows_agreed: t.agreeing,
      effective_rows: n,
      lower,
      upper,
      confidence,
      live_error_rate: this.errorRate('live'),
      candidate_error_rate: this.errorRate('candidate'),
      latency_p99_ms: t.p99() ?? null,
      calibration: t.calibration() ?? null,
      rule: why
    }
    this.decision = { action, version: this.config.candidate, at: now.toISOString(), evidence }
    this.phase = action === 'promote' ? 'promoted' : action === 'rollback' ? 'rolled_back' : 'inconclusive'
    return this.decision
  }
}
