/**
 * What a rollout keeps of each request: the answers each arm served, the comparisons
 * (agreement, absolute differences) and the shadow runs dropped, in its controller and
 * its metrics; after each, the promotion rule (rollout/controller.ts) and its decision.
 */
import type { Arm, ComparisonResult } from './controller.js'
import type { RolloutEvents } from './events.js'
import type { DropReason } from './gate.js'
import type { RowEvidence } from './metric-kinds.js'
import type { RolloutMetrics } from './metrics.js'
import type { ModelRollout } from './model-rollout.js'

export interface RecorderDeps {
  metrics: RolloutMetrics
  events: RolloutEvents
  /** Whether `r` is still the model's rollout (rollout/model-rollout.ts). */
  isCurrent: (model: string, r: ModelRollout) => boolean
}

export class RolloutRecorder {
  #deps: RecorderDeps

  constructor (deps: RecorderDeps) {
    this.#deps = deps
  }

  /** A canary routed a request to `arm`, answered by `version`. */
  routed (model: string, version: number, arm: Arm): void {
    this.#deps.metrics.canaryRequests.inc({ model, version: String(version), arm })
  }

  /** The answering arm answered (5xx: `failed`); shadow mode counts candidate runs when they finish. */
  served (r: ModelRollout, model: string, arm: Arm, failed: boolean): void {
    r.controller.served(arm, failed)
    this.#decide(model, r)
  }

  dropped (r: ModelRollout, model: string, reason: DropReason): void {
    r.controller.dropped++
    this.#deps.metrics.shadowDropped.inc({ model, reason })
  }

  /**
   * A comparison's outcome, its rows (rollout/metric-kinds.ts) and both versions' time on
   * the inputs; ignored when the rollout was reconfigured or decided meanwhile.
   */
  compared (r: ModelRollout, model: string, result: ComparisonResult, outputs: Array<{ name: string, maxAbsDiff: number, meanAbsDiff: number }>, candidateIsPartner: boolean, failed: boolean, rows?: Pick<RowEvidence, 'rows' | 'agree' | 'sumLive' | 'sumCandidate'>, latency?: { liveMs: number, candidateMs: number }): void {
    if (!this.#deps.isCurrent(model, r) || r.controller.phase !== 'observing') return
    const cfg = r.controller.config
    const labels = { model, live_version: String(cfg.live), candidate_version: String(cfg.candidate) }
    const m = this.#deps.metrics
    m.comparisons.inc({ ...labels, result })
    for (const o of outputs) {
      m.absDiff.observe({ ...labels, output: o.name, stat: 'max' }, o.maxAbsDiff)
      m.absDiff.observe({ ...labels, output: o.name, stat: 'mean' }, o.meanAbsDiff)
    }
    r.controller.compare(result, outputs, rows, latency)
    if (candidateIsPartner && cfg.mode === 'shadow') r.controller.served('candidate', failed)
    m.agreement.set(labels, r.controller.agreement ?? 0)
    this.#decide(model, r)
  }

  /** A canary's live run for comparison failed: counted apart, not compared. */
  liveFailed (r: ModelRollout, model: string): void {
    if (this.#deps.isCurrent(model, r) && r.controller.phase === 'observing') r.controller.liveFailed++
  }

  /** The agreement gauge belongs to the rollout in progress: it goes when that rollout ends or starts over. */
  clearAgreement (model: string, r: ModelRollout): void {
    const cfg = r.controller.config
    this.#deps.metrics.agreement.remove({ model, live_version: String(cfg.live), candidate_version: String(cfg.candidate) })
  }

  #decide (model: string, r: ModelRollout): void {
    const d = r.controller.evaluate()
    if (d === undefined) return
    const cfg = r.controller.config
    if (d.action === 'promote') {
      this.#deps.metrics.promotions.inc({ model, version: String(d.version) })
      this.#deps.events.promoted(model, d.version, cfg.live, cfg.mode, d.evidence)
    } else if (d.action === 'rollback') {
      this.#deps.metrics.rollbacks.inc({ model, version: String(d.version) })
      this.#deps.events.rolledBack(model, d.version, cfg.live, cfg.mode, d.evidence)
    } else {
      this.#deps.metrics.inconclusive.inc({ model, version: String(d.version) })
      this.#deps.events.inconclusive(model, d.version, cfg.live, cfg.mode, d.evidence)
    }
  }
}
