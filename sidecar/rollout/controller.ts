/**
 * The state of one model's rollout, and the promotion rule. Pure: counts go in,
 * decisions come out; the caller logs, counts and routes.
 *
 *   observing    the candidate runs (shadow or canary) and is compared
 *   promoted     the candidate is the live version now (in memory, until config.yaml changes)
 *   rolled_back  the candidate gets no more traffic
 *
 * Rule (with `promotion` configured), checked after every comparison and answer once at
 * least `min_requests` requests were compared:
 *   promote   agreement >= min_agreement and candidate error rate <= live error rate + max_error_rate_delta
 *   rollback  agreement <  rollback.below_agreement (default min_agreement), or the error rate is worse than that
 *   otherwise keep observing.
 * Agreement = agreeing / compared requests; a request the candidate failed on counts as
 * compared and not agreeing. A canary's live run for comparison that fails is not the
 * candidate's fault: it is counted apart (`liveFailed`) and not compared. Error rate = answers (canary) or shadow runs (shadow) with a
 * 5xx status / all of them, per arm.
 */
import type { RolloutConfig } from '../models/config-types.js'

export type RolloutPhase = 'observing' | 'promoted' | 'rolled_back'
export type Arm = 'live' | 'candidate'
export type ComparisonResult = 'agree' | 'disagree' | 'error'

export interface Evidence {
  compared: number
  agreed: number
  agreement: number
  live_error_rate: number
  candidate_error_rate: number
  rule: string
}

export interface Decision {
  action: 'promote' | 'rollback'
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
  readonly arms: Record<Arm, { requests: number, errors: number }> = { live: { requests: 0, errors: 0 }, candidate: { requests: 0, errors: 0 } }
  /** Per output: largest max-abs-diff seen and the running sum of mean-abs-diffs. */
  readonly diffs = new Map<string, { max: number, meanSum: number, n: number }>()
  decision: Decision | undefined

  constructor (config: RolloutConfig) {
    this.config = config
  }

  /** The version that answers requests without an explicit version. */
  get liveVersion (): number {
    return this.phase === 'promoted' ? this.config.candidate : this.config.live
  }

  get agreement (): number | undefined {
    return this.compared === 0 ? undefined : this.agreed / this.compared
  }

  errorRate (arm: Arm): number {
    const a = this.arms[arm]
    return a.requests === 0 ? 0 : a.errors / a.requests
  }

  served (arm: Arm, failed: boolean): void {
    this.arms[arm].requests++
    if (failed) this.arms[arm].errors++
  }

  compare (result: ComparisonResult, outputs: Array<{ name: string, maxAbsDiff: number, meanAbsDiff: number }> = []): void {
    this.compared++
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

  /** Applies the rule; returns the decision when one was made now (the phase has changed). */
  evaluate (now = new Date()): Decision | undefined {
    const rule = this.config.promotion
    if (this.phase !== 'observing' || rule === undefined || this.compared < rule.minRequests) return undefined
    const agreement = this.agreed / this.compared
    const live = this.errorRate('live')
    const candidate = this.errorRate('candidate')
    const errorsOk = candidate <= live + rule.maxErrorRateDelta + 1e-12
    const evidence = (text: string): Evidence => ({ compared: this.compared, agreed: this.agreed, agreement, live_error_rate: live, candidate_error_rate: candidate, rule: text })
    let decision: Decision | undefined
    if (agreement >= rule.minAgreement && errorsOk) {
      decision = { action: 'promote', version: this.config.candidate, at: now.toISOString(), evidence: evidence(`agreement ${fmt(agreement)} >= min_agreement ${rule.minAgreement} over ${this.compared} >= ${rule.minRequests} requests; candidate error rate ${fmt(candidate)} <= live ${fmt(live)} + ${rule.maxErrorRateDelta}`) }
      this.phase = 'promoted'
    } else if (agreement < rule.rollbackBelow || !errorsOk) {
      const why = !errorsOk
        ? `candidate error rate ${fmt(candidate)} > live ${fmt(live)} + ${rule.maxErrorRateDelta}`
        : `agreement ${fmt(agreement)} < ${rule.rollbackBelow} over ${this.compared} >= ${rule.minRequests} requests`
      decision = { action: 'rollback', version: this.config.candidate, at: now.toISOString(), evidence: evidence(why) }
      this.phase = 'rolled_back'
    }
    this.decision = decision ?? this.decision
    return decision
  }
}

function fmt (x: number): string {
  return String(Math.round(x * 1e6) / 1e6)
}
