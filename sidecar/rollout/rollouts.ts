/**
 * Runs the rollouts that models' `config.yaml` declare (models/rollout-config.ts): what the
 * wiring and the dispatcher use. The work is done in its parts:
 *
 *   model-rollout.ts  the rollout in progress per model, and when it starts over
 *   routing.ts        which version answers, the canary's sticky share, shadow sampling
 *   shadow.ts         the shadow run on an idle worker, after the answer, and its gate
 *   recording.ts      answers, comparisons and drops: the controller, its decisions, metrics
 *   events.ts         what the rollout reports; the observer (inference/rollout-observation.ts)
 *                     owns the log lines and spans
 *
 * Hooks (inference/dispatcher.ts): `live()` before decoding, `route()` after, `finish()`
 * once the answer is encoded.
 */
import type { Span } from '@opentelemetry/api'
import type { InferRequest } from '../codec/infer-request.js'
import type { ModelConfig, RolloutConfig } from '../models/config-types.js'
import type { ModelVersion } from '../models/model-version.js'
import type { WorkerPool } from '../runtime/worker-pool.js'
import type { Arm, RolloutController } from './controller.js'
import type { RolloutEvents } from './events.js'
import type { RolloutMetrics } from './metrics.js'
import { ROLLOUT_DEFAULTS } from '../models/rollout-config.js'
import { wilson, z } from './stats.js'
import { RolloutTable, serving, type ModelRollout, type VersionSource } from './model-rollout.js'
import { RolloutRecorder } from './recording.js'
import { RolloutRouter, type RouteCall, type Routed } from './routing.js'
import { ShadowRunner } from './shadow.js'

export type { RouteCall, Routed } from './routing.js'
export type { VersionSource } from './model-rollout.js'
export { incompatibility } from './routing.js'

export interface RolloutsDeps {
  versions: VersionSource
  pool: Pick<WorkerPool, 'idleWorkers' | 'run' | 'size' | 'inProcess'>
  metrics: RolloutMetrics
  /** Where the rollout's log lines and spans go (inference/rollout-observation.ts). */
  events: RolloutEvents
  /** Sampling source in [0, 1); tests pass a fixed one. */
  random?: () => number
}

export class Rollouts {
  #versions: VersionSource
  #table: RolloutTable
  #shadow: ShadowRunner
  #router: RolloutRouter

  constructor (deps: RolloutsDeps) {
    const { versions, pool, metrics, events } = deps
    this.#versions = versions
    const isCurrent = (model: string, r: ModelRollout): boolean => this.#table.isCurrent(model, r)
    const recorder = new RolloutRecorder({ metrics, events, isCurrent })
    this.#table = new RolloutTable({ versions, events, ended: (model, r) => recorder.clearSeries(model, r) })
    this.#shadow = new ShadowRunner({ pool, recorder, events, isCurrent })
    this.#router = new RolloutRouter({ versions, table: this.#table, shadow: this.#shadow, recorder, events, random: deps.random ?? Math.random })
  }

  /**
   * A model's config was (re)loaded; `undefined` when the model left the repository.
   * An unchanged `rollout:` keeps its state; a changed one starts over.
   */
  configure (model: string, config: ModelConfig | undefined): void {
    this.#table.configure(model, config)
  }

  /** See RolloutRouter.live: the version answering requests without a version; throws 503 when it is not serving. */
  live (model: string): ModelVersion | undefined {
    return this.#router.live(model)
  }

  /** The version that answers requests without a version (see `live()`); undefined without a rollout. */
  answering (model: string): number | undefined {
    return this.#table.current(model)?.controller.liveVersion
  }

  /** Routes a decoded request that `live()` resolved; undefined when no rollout work applies. */
  route (live: ModelVersion, request: InferRequest, call: RouteCall, span: Span): Routed | undefined {
    return this.#router.route(live, request, call, span)
  }

  /** What GET /v2/models/{m}/rollout shows. */
  state (model: string): Record<string, unknown> {
    const r = this.#table.current(model)
    if (r === undefined) return { name: model, state: 'off' }
    const c = r.controller
    const cfg = c.config
    let state: string = c.phase
    let reason = ''
    if (c.phase === 'observing') {
      const live = serving(this.#versions, model, cfg.live)
      const cand = serving(this.#versions, model, cfg.candidate)
      if (live === undefined || cand === undefined) {
        state = 'waiting'
        reason = `version ${live === undefined ? cfg.live : cfg.candidate} is not serving`
      } else if (this.#router.problem(r, live, cand) !== '') {
        state = 'incompatible'
        reason = r.compat.problem
      } else if ((reason = this.#shadow.blocked(r, live, cand)) !== '') {
        state = 'blocked'
      }
    }
    const outputs: Record<string, { max_abs_diff: number, mean_abs_diff: number }> = {}
    for (const [name, d] of c.diffs) outputs[name] = { max_abs_diff: d.max, mean_abs_diff: d.n === 0 ? 0 : d.meanSum / d.n }
    const arm = (a: Arm): object => ({ requests: c.arms[a].requests, errors: c.arms[a].errors, error_rate: c.errorRate(a) })
    return {
      name: model,
      mode: cfg.mode,
      decided_by: cfg.decide,
      state,
      reason,
      live_version: String(c.liveVersion),
      candidate_version: String(cfg.candidate),
      configured_live_version: String(cfg.live),
      sample: cfg.sample,
      share: cfg.share,
      sticky_key: cfg.mode !== 'canary' ? null : cfg.stickyHeader !== undefined ? `header:${cfg.stickyHeader}` : 'id',
      compared: c.compared,
      agreed: c.agreed,
      disagreed: c.disagreed,
      candidate_errors: c.failed,
      live_errors: c.liveFailed,
      agreement: c.agreement ?? null,
      rows: c.tally.rows,
      rows_agreed: c.tally.agreeing,
      metric: cfg.compare.metric ?? null,
      calibration: c.tally.calibration() ?? null,
      latency_p99_ms: c.tally.p99() ?? null,
      shadow_dropped: c.dropped,
      shadow_dropped_by: { ...c.droppedBy },
      // Shadow work is dropped when the pool is busy: the share of sampled requests compared says how much of the traffic the evidence saw.
      coverage: c.compared + c.dropped === 0 ? null : c.compared / (c.compared + c.dropped),
      live: arm('live'),
      candidate: arm('candidate'),
      outputs,
      promotion: cfg.promotion === undefined
        ? null
        : promotionView(cfg.promotion),
      decision: c.decision ?? null,
      evidence: evidenceView(c)
    }
  }

  /** The controller of a model's rollout (tests). */
  controller (model: string): RolloutController | undefined {
    return this.#table.get(model)?.controller
  }
}

/**
 * The sums the evidence counters export (rollout/evidence.ts) and what they give: the
 * effective rows and the Wilson bounds at the rule's confidence (no decision point's share
 * of it: those are the decider's).
 */
function evidenceView (c: RolloutController): Record<string, number | null> {
  const t = c.tally
  const n = t.effective
  const confidence = c.config.promotion?.confidence ?? ROLLOUT_DEFAULTS.confidence
  const { lower, upper } = wilson((t.agreement ?? 0) * n, n, z(confidence))
  return { ...t.sums, effective_rows: n, agreement: t.agreement ?? null, lower: t.rows === 0 ? null : lower, upper: t.rows === 0 ? null : upper, confidence }
}

function promotionView (p: NonNullable<RolloutConfig['promotion']>): Record<string, number> {
  return {
    min_requests: p.minRequests,
    max_requests: p.maxRequests,
    min_agreement: p.minAgreement,
    confidence: p.confidence,
    max_error_rate_delta: p.maxErrorRateDelta,
    min_errors: p.minErrors,
    max_latency_ratio: p.maxLatencyRatio,
    latency_slack_ms: p.latencySlackMs,
    rollback_below_agreement: p.rollbackBelow
  }
}

export type { RolloutConfig }
