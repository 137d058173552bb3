/**
 * What a rollout keeps of each request: the answers each arm served, the comparisons
 * (agreement, absolute differences) and the shadow runs dropped, in its controller and
 * its metrics; after each, the promotion rule (rollout/controller.ts) and its decision.
 * The evidence counters get exactly what the controller's tally adds (rollout/evidence.ts),
 * so the counters of several pods add up to the evidence of all their requests. A rollout
 * that the fleet decides (`decide: fleet`) is measured and never decided here.
 */
import type { Arm, ComparisonResult } from './controller.js'
import type { RolloutEvents } from './events.js'
import { DROP_REASONS, type DropReason } from './gate.js'
import type { RowEvidence } from './metric-kinds.js'
import { EVIDENCE_STATS, type RequestEvidence } from './evidence.js'
import { EVIDENCE_CLASSES, type RolloutMetrics } from './metrics.js'
import type { ModelRollout } from './model-rollout.js'

export interface RecorderDeps {
  metrics: RolloutMetrics
  events: RolloutEvents
  /** Whether `r` is still the model's rollout (rollout/model-rollout.ts). */
  isCurrent: (model: string, r: ModelRollout) => boolean
}

export class RolloutRecorder {
  #deps: RecorderDeps
  #cached = new WeakMap<ModelRollout, CachedLabels>()

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
    this.#answered(r, model, arm, failed)
    this.#decide(model, r)
  }

  /** The answers counter of the rollout in progress (an answer that outlived its rollout is not counted in the next one's series). */
  #answered (r: ModelRollout, model: string, arm: Arm, failed: boolean): void {
    if (!this.#deps.isCurrent(model, r)) return
    this.#deps.metrics.answers.inc(this.#labels(model, r).answers[arm][failed ? 'error' : 'ok'])
  }

  dropped (r: ModelRollout, model: string, reason: DropReason): void {
    const c = r.controller
    c.dropped++
    c.droppedBy[reason] = (c.droppedBy[reason] ?? 0) + 1
    this.#deps.metrics.shadowDropped.inc(this.#labels(model, r).dropped[reason])
  }

  /**
   * The label sets a rollout's per-request counters use, made once per rollout: these run
   * on every live request, and prom-client costs several times more for a label object
   * built by spreading than for one it has seen (bench/shadow.ts).
   */
  #labels (model: string, r: ModelRollout): CachedLabels {
    let l = this.#cached.get(r)
    if (l === undefined) {
      const v = labelsOf(model, r)
      const arm = (a: Arm): CachedLabels['answers'][Arm] => ({ ok: { ...v, arm: a, result: 'ok' }, error: { ...v, arm: a, result: 'error' } })
      l = { answers: { live: arm('live'), candidate: arm('candidate') }, dropped: Object.fromEntries(DROP_REASONS.map(reason => [reason, { model, reason }])) as CachedLabels['dropped'] }
      this.#cached.set(r, l)
    }
    return l
  }

  /**
   * A comparison's outcome, its rows (rollout/metric-kinds.ts) and both versions' time on
   * the inputs; ignored when the rollout was reconfigured or decided meanwhile.
   */
  compared (r: ModelRollout, model: string, result: ComparisonResult, outputs: Array<{ name: string, maxAbsDiff: number, meanAbsDiff: number }>, candidateIsPartner: boolean, failed: boolean, rows?: Pick<RowEvidence, 'rows' | 'agree' | 'sumLive' | 'sumCandidate'>, latency?: { liveMs: number, candidateMs: number }): void {
    if (!this.#deps.isCurrent(model, r) || r.controller.phase !== 'observing') return
    const cfg = r.controller.config
    const labels = labelsOf(model, r)
    const m = this.#deps.metrics
    m.comparisons.inc({ ...labels, result })
    for (const o of outputs) {
      m.absDiff.observe({ ...labels, output: o.name, stat: 'max' }, o.maxAbsDiff)
      m.absDiff.observe({ ...labels, output: o.name, stat: 'mean' }, o.meanAbsDiff)
    }
    const tally = r.controller.tally
    const before = tally.requests
    r.controller.compare(result, outputs, rows, latency)
    // What the tally counted (a request without rows adds nothing), no more, no less.
    if (tally.requests > before && tally.last !== undefined) this.#evidence(labels, tally.last)
    if (latency !== undefined) {
      m.latency.observe({ ...labels, arm: 'live' }, latency.liveMs / 1000)
      m.latency.observe({ ...labels, arm: 'candidate' }, latency.candidateMs / 1000)
    }
    if (candidateIsPartner && cfg.mode === 'shadow') {
      r.controller.served('candidate', failed)
      this.#answered(r, model, 'candidate', failed)
    }
    m.agreement.set(labels, r.controller.agreement ?? 0)
    this.#decide(model, r)
  }

  /** A canary's live run for comparison failed: counted apart, not compared. */
  liveFailed (r: ModelRollout, model: string): void {
    if (this.#deps.isCurrent(model, r) && r.controller.phase === 'observing') r.controller.liveFailed++
  }

  #evidence (labels: Labels, e: RequestEvidence): void {
    const m = this.#deps.metrics
    for (const stat of EVIDENCE_STATS) m.evidence.inc({ ...labels, stat }, e.sums[stat])
    const sums = [['live', e.sumLive], ['candidate', e.sumCandidate]] as const
    for (const [arm, byClass] of sums) {
      byClass?.slice(0, EVIDENCE_CLASSES).forEach((v, c) => { m.probabilitySum.inc({ ...labels, arm, class: String(c) }, v) })
    }
  }

  /**
   * The agreement gauge and the evidence series belong to the rollout in progress: they
   * go when that rollout ends or starts over (a new one counts from zero).
   */
  clearSeries (model: string, r: ModelRollout): void {
    const labels = labelsOf(model, r)
    const m = this.#deps.metrics
    m.agreement.remove(labels)
    for (const stat of EVIDENCE_STATS) m.evidence.remove({ ...labels, stat })
    for (const arm of ['live', 'candidate'] as const) {
      for (const result of ['ok', 'error']) m.answers.remove({ ...labels, arm, result })
      for (let c = 0; c < EVIDENCE_CLASSES; c++) m.probabilitySum.remove({ ...labels, arm, class: String(c) })
      m.latency.remove({ ...labels, arm })
    }
  }

  #decide (model: string, r: ModelRollout): void {
    // The fleet decides (the `onnx-sidecar rollout` command, Argo Rollouts, Flagger): this pod measures only.
    if (r.controller.config.decide === 'fleet') return
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

type Labels = Record<'model' | 'live_version' | 'candidate_version', string>

interface CachedLabels {
  answers: Record<Arm, Record<'ok' | 'error', Labels & { arm: Arm, result: 'ok' | 'error' }>>
  dropped: Record<DropReason, { model: string, reason: DropReason }>
}

function labelsOf (model: string, r: ModelRollout): Labels {
  const cfg = r.controller.config
  return { model, live_version: String(cfg.live), candidate_version: String(cfg.candidate) }
}
