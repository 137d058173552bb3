/**
 * Runs the rollouts that models' `config.yaml` declare (see rollout/config.ts): picks the
 * version that answers a request without an explicit version, splits canary traffic by
 * sticky key, runs shadow work after the live answer has been written, compares, and
 * applies the promotion rule, with logs, metrics and spans for each step.
 *
 * Hooks (inference.ts): `live()` before decoding, `route()` after, `finish()` once the
 * answer is encoded. Requests that name a version never reach a rollout. While a rollout
 * is configured, requests without a version are answered by its live version (the
 * candidate once promoted), by the candidate through the canary share, or, when that
 * version is not serving, with 503 (never by another version).
 *
 * A rollout starts over (counts at zero, live answering) when its block changes, or when
 * the content of its candidate's model file changes (its fingerprint, a SHA-256), or that
 * of its live version's while it observes. A decided rollout (promoted or rolled back)
 * stays decided while the candidate's content is the same: a new live file does not
 * retry a rolled-back candidate, nor send a promoted one's traffic back to live.
 */
import { SpanStatusCode, type Context, type Span, type Tracer } from '@opentelemetry/api'
import { isDeepStrictEqual } from 'node:util'
import type { Logger } from '../../common/logger.js'
import { errors, SidecarError } from '../core/errors.js'
import { halfToNumber } from '../core/float16.js'
import type { InferRequest } from '../codec/infer-request.js'
import type { ModelConfig } from '../models/model-config.js'
import type { ModelVersion } from '../models/model-version.js'
import type { WireTensor } from '../runtime/protocol.js'
import { WorkerUnavailableError, type WorkerPool } from '../runtime/worker-pool.js'
import { compareOutputs } from './compare.js'
import type { RolloutConfig } from '../models/rollout-config.js'
import { RolloutController, type Arm, type ComparisonResult } from './controller.js'
import { shadowGate, workersNeeded, type DropReason } from './gate.js'
import type { RolloutMetrics } from './metrics.js'
import { inCanary } from './sticky.js'

/** What the rollouts need of the model manager. */
export interface VersionSource {
  /** A serving version, or throws (not loaded, loading, unknown). */
  resolve: (name: string, version?: string) => ModelVersion
}

export interface RolloutsDeps {
  versions: VersionSource
  pool: Pick<WorkerPool, 'idleWorkers' | 'run' | 'size' | 'inProcess'>
  metrics: RolloutMetrics
  logger: Logger
  tracer: Tracer | undefined
  /** Sampling source in [0, 1); tests pass a fixed one. */
  random?: () => number
}

/** What a transport knows about a call that routing may use. */
export interface RouteCall {
  requestId: string
  /** A request header (REST) or metadata value (gRPC), lower-case name. */
  header?: (name: string) => string | undefined
}

/** A request the rollout routed: `mv` answers it; call `finish` once the answer is encoded (or failed). */
export interface Routed {
  mv: ModelVersion
  finish: (status: number, outputs: Record<string, WireTensor> | undefined, ctx: Context) => void
}

interface ModelRollout {
  controller: RolloutController
  /** Salt of the sticky hash: a new rollout draws a new cohort. */
  salt: string
  shadowBusy: boolean
  /** Cached compatibility of (live key, candidate key): '' when compatible. */
  compat: { keys: string, problem: string }
  /** Model file fingerprint (content) of each rollout version when first seen serving: see `#current`. */
  files: Map<number, string>
  /** The 'comparisons cannot run' warning was logged. */
  warnedBlocked: boolean
}

export class Rollouts {
  #deps: RolloutsDeps
  #log: Logger
  #models = new Map<string, ModelRollout>()
  #random: () => number

  constructor (deps: RolloutsDeps) {
    this.#deps = deps
    this.#log = deps.logger.child({ component: 'rollout' })
    this.#random = deps.random ?? Math.random
  }

  /**
   * A model's config was (re)loaded; `undefined` when the model left the repository.
   * An unchanged `rollout:` keeps its state; a changed one starts over.
   */
  configure (model: string, config: ModelConfig | undefined): void {
    const rollout = config?.rollout
    const current = this.#models.get(model)
    if (rollout === undefined) {
      if (current !== undefined) {
        this.#models.delete(model)
        this.#clearAgreement(model, current)
        this.#log.info({ model }, 'rollout removed from config.yaml')
      }
      return
    }
    if (current !== undefined && isDeepStrictEqual(current.controller.config, rollout)) return
    if (current !== undefined) this.#clearAgreement(model, current)
    this.#models.set(model, this.#fresh(model, rollout))
    const promotion = rollout.promotion === undefined ? undefined : { min_requests: rollout.promotion.minRequests, min_agreement: rollout.promotion.minAgreement, max_error_rate_delta: rollout.promotion.maxErrorRateDelta }
    const rollback = rollout.promotion === undefined ? undefined : { below_agreement: rollout.promotion.rollbackBelow }
    this.#log.info({ model, mode: rollout.mode, live: rollout.live, candidate: rollout.candidate, sample: rollout.sample, share: rollout.share, promotion, rollback }, current === undefined ? 'rollout configured' : 'rollout changed: starting over')
  }

  #fresh (model: string, rollout: RolloutConfig, files = new Map<number, string>()): ModelRollout {
    return { controller: new RolloutController(rollout), salt: `${model}:${rollout.candidate}`, shadowBusy: false, compat: { keys: '', problem: '' }, files, warnedBlocked: false }
  }

  /** The agreement gauge belongs to the rollout in progress: it goes when that rollout ends or starts over. */
  #clearAgreement (model: string, r: ModelRollout): void {
    const cfg = r.controller.config
    this.#deps.metrics.agreement.remove({ model, live_version: String(cfg.live), candidate_version: String(cfg.candidate) })
  }

  /**
   * The model's rollout, started over when the content of its candidate's model file
   * changed, or that of its live version's while no decision is taken.
   */
  #current (model: string): ModelRollout | undefined {
    const r = this.#models.get(model)
    if (r === undefined) return undefined
    const cfg = r.controller.config
    let changed: number[] | undefined
    const now = new Map<number, string>()
    for (const v of [cfg.live, cfg.candidate]) {
      const fp = this.#serving(model, v)?.fingerprint ?? r.files.get(v)
      if (fp === undefined) continue
      now.set(v, fp)
      const before = r.files.get(v)
      if (before === undefined) r.files.set(v, fp)
      else if (before !== fp) (changed ??= []).push(v)
    }
    if (changed === undefined) return r
    if (r.controller.phase !== 'observing' && !changed.includes(cfg.candidate)) {
      // The decision was about this candidate's content, which is unchanged: it stands.
      r.files = now
      this.#log.info({ model, versions: changed, phase: r.controller.phase }, 'rollout: live model file replaced; the decision stands')
      return r
    }
    this.#clearAgreement(model, r)
    const next = this.#fresh(model, cfg, now)
    this.#models.set(model, next)
    this.#log.info({ model, versions: changed, phase: r.controller.phase, compared: r.controller.compared }, 'rollout: model file replaced: starting over')
    return next
  }

  /**
   * The version that answers a request without a version: undefined without a rollout;
   * the rollout's live version (the candidate once promoted); throws 503 OS_ERR_MODEL_NOT_READY
   * when that version is not serving (another version never stands in for it).
   */
  live (model: string): ModelVersion | undefined {
    const r = this.#current(model)
    if (r === undefined) return undefined
    const c = r.controller
    const version = String(c.liveVersion)
    try {
      return this.#deps.versions.resolve(model, version)
    } catch (err) {
      if (!(err instanceof SidecarError) || err.code === errors.MODEL_NOT_FOUND.code) throw err
      const why = err.code === errors.VERSION_NOT_FOUND.code ? 'not loaded: not in the repository, or not the pinned version' : err.message.replace(/^.*? is not ready: /, '')
      const role = c.phase === 'promoted' ? 'the rollout\'s promoted candidate' : 'the rollout\'s live version'
      throw errors.MODEL_NOT_READY(model, version, `${role} answers requests without a version and is not serving (${why}); no other version answers them while the rollout is configured (name a version to reach it)`)
    }
  }

  /** The version that answers requests without a version (see `live()`); undefined without a rollout. */
  answering (model: string): number | undefined {
    return this.#current(model)?.controller.liveVersion
  }

  #serving (model: string, version: number): ModelVersion | undefined {
    try {
      return this.#deps.versions.resolve(model, String(version))
    } catch {
      return undefined
    }
  }

  /** Routes a decoded request that `live()` resolved; undefined when no rollout work applies. */
  route (live: ModelVersion, request: InferRequest, call: RouteCall, span: Span): Routed | undefined {
    const r = this.#models.get(live.name)
    if (r === undefined || r.controller.phase !== 'observing' || live.version !== r.controller.config.live) return undefined
    const cfg = r.controller.config
    const candidate = this.#serving(live.name, cfg.candidate)
    if (candidate === undefined || this.#problem(r, live, candidate) !== '') return undefined

    let answer = live
    let arm: Arm = 'live'
    let partner: ModelVersion | undefined = candidate
    if (cfg.mode === 'canary') {
      const key = (cfg.stickyHeader !== undefined ? call.header?.(cfg.stickyHeader) : request.id) ?? `\u0000${call.requestId}`
      if (inCanary(r.salt, key, cfg.share)) {
        answer = candidate
        arm = 'candidate'
        partner = live // compared against what live would have said
      } else {
        partner = undefined
      }
      this.#deps.metrics.canaryRequests.inc({ model: live.name, version: String(answer.version), arm })
      span.setAttributes({ 'onnx_sidecar.rollout': 'canary', 'onnx_sidecar.rollout.arm': arm })
    }

    // Shadow work is sampled and gated now; its inputs are copied now, because a worker run transfers them away.
    let shadowFeeds: Record<string, WireTensor> | undefined
    if (partner !== undefined && cfg.sample > 0 && (cfg.sample >= 1 || this.#random() < cfg.sample)) {
      const drop = this.#gate(r, live, candidate)
      if (drop !== undefined) {
        this.#dropped(r, live.name, drop)
        if (drop === 'worker') this.#blocked(r, live, candidate)
      } else {
        r.shadowBusy = true
        shadowFeeds = copyFeeds(request.feeds)
      }
    }
    return {
      mv: answer,
      finish: (status, outputs, ctx) => {
        if (status !== 499) {
          // Shadow mode counts candidate runs when they finish; here only the answering arm.
          r.controller.served(arm, status >= 500)
          this.#decide(live.name, r)
        }
        if (shadowFeeds === undefined || partner === undefined) return
        if (status !== 200 || outputs === undefined) {
          r.shadowBusy = false
          return
        }
        const feeds = shadowFeeds
        const other = partner
        // After the answer: node:http has written it when this runs.
        setImmediate(() => this.#shadow(r, feeds, answer, outputs, other, ctx))
      }
    }
  }

  /**
   * rollout/gate.ts: a shadow runs the candidate beside live; a canary runs live beside the
   * candidate, and both of its versions answer users. `starting`: the second check, when
   * the shadow run would start.
   */
  #gate (r: ModelRollout, live: ModelVersion, candidate: ModelVersion, starting = false): DropReason | undefined {
    const canary = r.controller.config.mode === 'canary'
    const run = canary ? live : candidate
    return shadowGate({
      shadowInProgress: r.shadowBusy && !starting,
      servingQueued: starting ? undefined : live.batcher.queued + (canary ? candidate.batcher.queued : 0),
      runs: canary ? 'live' : 'candidate',
      runIdle: run.batcher.idle,
      idleWorkers: this.#deps.pool.idleWorkers(run.key),
      servingInline: servingInline(r, live, candidate)
    })
  }

  /**
   * Why shadow work can never run with this pool ('' when it can): it needs more idle
   * workers than the sidecar has (see rollout/gate.ts). Logged once per rollout.
   */
  #blocked (r: ModelRollout, live: ModelVersion, candidate: ModelVersion): string {
    const cfg = r.controller.config
    const needed = workersNeeded(servingInline(r, live, candidate))
    const { pool } = this.#deps
    if (cfg.sample === 0 || pool.size >= needed) return ''
    const reason = pool.inProcess
      ? 'shadow needs an idle worker: ONNX Runtime runs on the main thread (--inference-thread main); run it on 2 workers (--inference-thread worker --workers 2, or onnx-sidecar.io/cpu-limit: "4")'
      : `shadow needs an idle worker: give the sidecar ${needed} workers (onnx-sidecar.io/cpu-limit: "4" or --workers ${needed})`
    if (!r.warnedBlocked) {
      r.warnedBlocked = true
      this.#log.warn({ model: live.name, live: cfg.live, candidate: cfg.candidate, workers: pool.size, needed, reason }, 'rollout: comparisons cannot run; every shadow run is dropped (reason worker) and no decision will be taken')
    }
    return reason
  }

  #dropped (r: ModelRollout, model: string, reason: DropReason): void {
    r.controller.dropped++
    this.#deps.metrics.shadowDropped.inc({ model, reason })
  }

  #shadow (r: ModelRollout, feeds: Record<string, WireTensor>, answer: ModelVersion, answered: Record<string, WireTensor>, partner: ModelVersion, ctx: Context): void {
    const model = answer.name
    const cfg = r.controller.config
    const candidateIsPartner = partner.version === cfg.candidate
    const [liveMv, candMv] = candidateIsPartner ? [answer, partner] : [partner, answer]
    // Checked again: live requests may have queued up while the answer was written.
    const drop = this.#models.get(model) === r && r.controller.phase === 'observing' ? this.#gate(r, liveMv, candMv, true) : 'in_progress'
    if (drop !== undefined) {
      r.shadowBusy = false
      if (this.#models.get(model) === r && r.controller.phase === 'observing') this.#dropped(r, model, drop)
      return
    }
    const { tracer } = this.#deps
    const span = tracer?.startSpan('rollout.shadow', { attributes: { 'onnx_sidecar.rollout': cfg.mode === 'canary' ? 'canary' : 'shadow', 'onnx_sidecar.model': model, 'onnx_sidecar.version': partner.version, 'onnx_sidecar.rollout.compared_with': answer.version } }, ctx)
    // Straight to an idle worker, never through the candidate's queue or its inline session.
    this.#deps.pool.run(partner.key, feeds, partner.outputs.map(o => o.name))
      .then(result => {
        const [liveOut, candOut] = candidateIsPartner ? [answered, result.outputs] : [result.outputs, answered]
        const c = compareOutputs(liveOut, candOut, { hasLabels: answer.labels !== undefined, compareOutput: cfg.compareOutput, tolerance: cfg.tolerance, half: halfToNumber })
        span?.setAttribute('onnx_sidecar.rollout.result', c.agree ? 'agree' : 'disagree')
        this.#record(r, model, c.agree ? 'agree' : 'disagree', c.outputs, candidateIsPartner, false)
      }, (err: Error) => {
        if (err instanceof WorkerUnavailableError) { // the worker died or went away: not the model's fault
          span?.setAttribute('onnx_sidecar.rollout.result', 'dropped')
          if (this.#models.get(model) === r) this.#dropped(r, model, 'worker')
          return
        }
        span?.setStatus({ code: SpanStatusCode.ERROR, message: err.message })
        if (!candidateIsPartner) {
          // A canary's live run failed: not the candidate's fault, and nothing to compare with.
          span?.setAttribute('onnx_sidecar.rollout.result', 'live_error')
          this.#log.info({ model, version: partner.version, reason: err.message }, 'rollout: live run for comparison failed; not compared')
          if (this.#models.get(model) === r && r.controller.phase === 'observing') r.controller.liveFailed++
          return
        }
        span?.setAttribute('onnx_sidecar.rollout.result', 'error')
        this.#log.info({ model, version: partner.version, reason: err.message }, 'rollout: shadow run failed')
        this.#record(r, model, 'error', [], candidateIsPartner, true)
      })
      .finally(() => {
        r.shadowBusy = false
        span?.end()
      })
  }

  #record (r: ModelRollout, model: string, result: ComparisonResult, outputs: Array<{ name: string, maxAbsDiff: number, meanAbsDiff: number }>, candidateIsPartner: boolean, failed: boolean): void {
    if (this.#models.get(model) !== r || r.controller.phase !== 'observing') return // reconfigured or decided meanwhile
    const cfg = r.controller.config
    const labels = { model, live_version: String(cfg.live), candidate_version: String(cfg.candidate) }
    const m = this.#deps.metrics
    m.comparisons.inc({ ...labels, result })
    for (const o of outputs) {
      m.absDiff.observe({ ...labels, output: o.name, stat: 'max' }, o.maxAbsDiff)
      m.absDiff.observe({ ...labels, output: o.name, stat: 'mean' }, o.meanAbsDiff)
    }
    r.controller.compare(result, outputs)
    if (candidateIsPartner && cfg.mode === 'shadow') r.controller.served('candidate', failed)
    m.agreement.set(labels, r.controller.agreement ?? 0)
    this.#decide(model, r)
  }

  #decide (model: string, r: ModelRollout): void {
    const d = r.controller.evaluate()
    if (d === undefined) return
    const cfg = r.controller.config
    if (d.action === 'promote') {
      this.#deps.metrics.promotions.inc({ model, version: String(d.version) })
      this.#log.info({ model, version: d.version, previous: cfg.live, mode: cfg.mode, evidence: d.evidence }, 'rollout: candidate promoted to live')
    } else {
      this.#deps.metrics.rollbacks.inc({ model, version: String(d.version) })
      this.#log.warn({ model, version: d.version, live: cfg.live, mode: cfg.mode, evidence: d.evidence }, 'rollout: candidate rolled back')
    }
  }

  /** Why the candidate cannot stand in for live ('' when it can); cached per pair of loaded sessions. */
  #problem (r: ModelRollout, live: ModelVersion, candidate: ModelVersion): string {
    const keys = `${live.key}|${candidate.key}`
    if (r.compat.keys !== keys) {
      r.compat = { keys, problem: incompatibility(live, candidate, r.controller.config.compareOutput) }
      if (r.compat.problem !== '') this.#log.error({ model: live.name, live: live.version, candidate: candidate.version, reason: r.compat.problem }, 'rollout: candidate cannot stand in for live; no shadow or canary traffic')
    }
    return r.compat.problem
  }

  /** What GET /v2/models/{m}/rollout shows. */
  state (model: string): Record<string, unknown> {
    const r = this.#current(model)
    if (r === undefined) return { name: model, state: 'off' }
    const c = r.controller
    const cfg = c.config
    let state: string = c.phase
    let reason = ''
    if (c.phase === 'observing') {
      const live = this.#serving(model, cfg.live)
      const cand = this.#serving(model, cfg.candidate)
      if (live === undefined || cand === undefined) {
        state = 'waiting'
        reason = `version ${live === undefined ? cfg.live : cfg.candidate} is not serving`
      } else if (this.#problem(r, live, cand) !== '') {
        state = 'incompatible'
        reason = r.compat.problem
      } else if ((reason = this.#blocked(r, live, cand)) !== '') {
        state = 'blocked'
      }
    }
    const outputs: Record<string, { max_abs_diff: number, mean_abs_diff: number }> = {}
    for (const [name, d] of c.diffs) outputs[name] = { max_abs_diff: d.max, mean_abs_diff: d.n === 0 ? 0 : d.meanSum / d.n }
    const arm = (a: Arm): object => ({ requests: c.arms[a].requests, errors: c.arms[a].errors, error_rate: c.errorRate(a) })
    return {
      name: model,
      mode: cfg.mode,
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
      shadow_dropped: c.dropped,
      live: arm('live'),
      candidate: arm('candidate'),
      outputs,
      promotion: cfg.promotion === undefined
        ? null
        : { min_requests: cfg.promotion.minRequests, min_agreement: cfg.promotion.minAgreement, max_error_rate_delta: cfg.promotion.maxErrorRateDelta, rollback_below_agreement: cfg.promotion.rollbackBelow },
      decision: c.decision ?? null
    }
  }

  /** The controller of a model's rollout (tests). */
  controller (model: string): RolloutController | undefined {
    return this.#models.get(model)?.controller
  }
}

/** Every version answering users runs inline: live, and in a canary the candidate too. */
function servingInline (r: ModelRollout, live: ModelVersion, candidate: ModelVersion): boolean {
  return live.inline !== undefined && (r.controller.config.mode !== 'canary' || candidate.inline !== undefined)
}

function copyFeeds (feeds: Record<string, WireTensor>): Record<string, WireTensor> {
  const out: Record<string, WireTensor> = {}
  for (const [name, t] of Object.entries(feeds)) {
    out[name] = { type: t.type, dims: [...t.dims], data: Array.isArray(t.data) ? [...t.data] : t.data.slice() }
  }
  return out
}

/**
 * Same inputs (name, datatype, shape); every live output present with its datatype and a
 * shape that can match (same rank, fixed dimensions equal; -1 matches anything);
 * `compare_output` one of the outputs; batching on for both or neither.
 */
export function incompatibility (live: ModelVersion, candidate: ModelVersion, compareOutput?: string): string {
  const fmt = (s: { name: string, datatype: string, shape: number[] }): string => `${s.name} ${s.datatype} [${s.shape.join(',')}]`
  const a = live.inputs.map(fmt).sort().join('; ')
  const b = candidate.inputs.map(fmt).sort().join('; ')
  if (a !== b) return `inputs differ: version ${live.version} has ${a}, version ${candidate.version} has ${b}`
  if (compareOutput !== undefined && !live.outputByName.has(compareOutput)) {
    return `config.yaml: key 'rollout.compare_output' is '${compareOutput}', which is not an output of version ${live.version} (outputs: ${live.outputs.map(o => o.name).join(', ')})`
  }
  for (const o of live.outputs) {
    const c = candidate.outputByName.get(o.name)
    if (c === undefined) return `version ${candidate.version} has no output '${o.name}'`
    if (c.datatype !== o.datatype) return `output '${o.name}' is ${o.datatype} in version ${live.version} but ${c.datatype} in version ${candidate.version}`
    if (c.shape.length !== o.shape.length || o.shape.some((d, i) => d !== -1 && c.shape[i] !== -1 && c.shape[i] !== d)) {
      return `output '${o.name}' has shape [${o.shape.join(',')}] in version ${live.version} but [${c.shape.join(',')}] in version ${candidate.version}`
    }
  }
  if ((live.maxBatchSize === 0) !== (candidate.maxBatchSize === 0)) return 'one version batches requests and the other does not'
  return ''
}

export type { RolloutConfig }
