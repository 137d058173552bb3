/**
 * Shadow work: the second version's run of a sampled request, for comparison (the
 * candidate beside live in a shadow; live beside the candidate in a canary, where both
 * answer users). It runs off the request path, after the answer has been written,
 * straight on an idle worker thread (never the version's queue or its inline session),
 * at most one per model, and only when rollout/gate.ts lets it; otherwise it is dropped
 * and counted. Its outcome goes to the recorder; its span and log lines to the events.
 */
import type { Context } from '@opentelemetry/api'
import { halfToNumber } from '../core/float16.js'
import type { ModelVersion } from '../models/model-version.js'
import type { WireTensor } from '../runtime/protocol.js'
import { WorkerUnavailableError, type WorkerPool } from '../runtime/worker-pool.js'
import { compareOutputs } from './compare.js'
import type { RolloutEvents } from './events.js'
import { shadowGate, workersNeeded, type DropReason } from './gate.js'
import type { ModelRollout } from './model-rollout.js'
import type { RolloutRecorder } from './recording.js'

export interface ShadowDeps {
  pool: Pick<WorkerPool, 'idleWorkers' | 'run' | 'size' | 'inProcess'>
  recorder: Pick<RolloutRecorder, 'dropped' | 'compared' | 'liveFailed'>
  events: RolloutEvents
  /** Whether `r` is still the model's rollout (rollout/model-rollout.ts). */
  isCurrent: (model: string, r: ModelRollout) => boolean
}

export class ShadowRunner {
  #deps: ShadowDeps

  constructor (deps: ShadowDeps) {
    this.#deps = deps
  }

  /**
   * A sampled request: its shadow run is reserved (the model's one slot) and its inputs
   * copied now, because a worker run transfers them away; undefined when it is dropped.
   */
  admit (r: ModelRollout, live: ModelVersion, candidate: ModelVersion, feeds: Record<string, WireTensor>): Record<string, WireTensor> | undefined {
    const drop = this.#gate(r, live, candidate)
    if (drop !== undefined) {
      this.#deps.recorder.dropped(r, live.name, drop)
      if (drop === 'worker') this.blocked(r, live, candidate)
      return undefined
    }
    r.shadowBusy = true
    return copyFeeds(feeds)
  }

  /** The answer failed: the admitted shadow run will not happen. */
  release (r: ModelRollout): void {
    r.shadowBusy = false
  }

  /**
   * Runs `partner` on the copied feeds once the answer (`answer`'s `answered` outputs,
   * `answerMs` from routing to the encoded answer) has been written.
   */
  afterAnswer (r: ModelRollout, feeds: Record<string, WireTensor>, answer: ModelVersion, answered: Record<string, WireTensor>, partner: ModelVersion, ctx: Context, answerMs = NaN): void {
    // After the answer: node:http has written it when this runs.
    setImmediate(() => this.#run(r, feeds, answer, answered, partner, ctx, answerMs))
  }

  /**
   * Why shadow work can never run with this pool ('' when it can): it needs more idle
   * workers than the sidecar has (see rollout/gate.ts). Reported once per rollout.
   */
  blocked (r: ModelRollout, live: ModelVersion, candidate: ModelVersion): string {
    const cfg = r.controller.config
    const needed = workersNeeded(servingInline(r, live, candidate))
    const { pool } = this.#deps
    if (cfg.sample === 0 || pool.size >= needed) return ''
    const reason = pool.inProcess
      ? 'shadow needs an idle worker: ONNX Runtime runs on the main thread (--inference-thread main); run it on 2 workers (--inference-thread worker --workers 2, or onnx-sidecar.io/cpu-limit: "4")'
      : `shadow needs an idle worker: give the sidecar ${needed} workers (onnx-sidecar.io/cpu-limit: "4" or --workers ${needed})`
    if (!r.warnedBlocked) {
      r.warnedBlocked = true
      this.#deps.events.blocked(live.name, cfg.live, cfg.candidate, pool.size, needed, reason)
    }
    return reason
  }

  /**
   * rollout/gate.ts: a shadow runs the candidate beside live; a canary runs live beside the
   * candidate, and both of its versions answer users. `starting`: the second check, when
   * the shadow run would start.
   */
  #gate (r: ModelRollout, live: ModelVersion, candidate: ModelVersion, starting = false): DropReason | undefined {
    // Most sampled requests of a busy model meet a run in progress: say so before looking at queues and workers.
    if (r.shadowBusy && !starting) return 'in_progress'
    const canary = r.controller.config.mode === 'canary'
    const run = canary ? live : candidate
    return shadowGate({
      shadowInProgress: r.shadowBusy && !starting,
      servingQueued: starting ? undefined : live.batcher.queued + (canary ? candidate.batcher.queued : 0),
      servingBusy: starting ? !live.batcher.idle || (canary && !candidate.batcher.idle) : undefined,
      runs: canary ? 'live' : 'candidate',
      runIdle: run.batcher.idle,
      idleWorkers: this.#deps.pool.idleWorkers(run.key),
      servingInline: servingInline(r, live, candidate)
    })
  }

  #run (r: ModelRollout, feeds: Record<string, WireTensor>, answer: ModelVersion, answered: Record<string, WireTensor>, partner: ModelVersion, ctx: Context, answerMs: number): void {
    const model = answer.name
    const cfg = r.controller.config
    const { recorder, isCurrent } = this.#deps
    const candidateIsPartner = partner.version === cfg.candidate
    const [liveMv, candMv] = candidateIsPartner ? [answer, partner] : [partner, answer]
    // Checked again: live requests may have queued up while the answer was written.
    const observing = (): boolean => isCurrent(model, r) && r.controller.phase === 'observing'
    const drop = observing() ? this.#gate(r, liveMv, candMv, true) : 'in_progress'
    if (drop !== undefined) {
      r.shadowBusy = false
      if (observing()) recorder.dropped(r, model, drop)
      return
    }
    const run = this.#deps.events.shadowStarted({ mode: cfg.mode, model, version: partner.version, comparedWith: answer.version }, ctx)
    // Straight to an idle worker, never through the candidate's queue or its inline session.
    const started = performance.now()
    this.#deps.pool.run(partner.key, feeds, partner.outputs.map(o => o.name))
      .then(result => {
        const runMs = performance.now() - started
        const [liveOut, candOut] = candidateIsPartner ? [answered, result.outputs] : [result.outputs, answered]
        const c = compareOutputs(liveOut, candOut, { hasLabels: answer.labels !== undefined, compareOutput: cfg.compareOutput, tolerance: cfg.tolerance, half: halfToNumber, metric: cfg.compare.metric, settings: cfg.compare })
        run.compared(c.agree)
        // Both times on the same inputs: the answer's (routing to encoded answer) and this run's.
        const latency = Number.isFinite(answerMs) ? (candidateIsPartner ? { liveMs: answerMs, candidateMs: runMs } : { liveMs: runMs, candidateMs: answerMs }) : undefined
        recorder.compared(r, model, c.agree ? 'agree' : 'disagree', c.outputs, candidateIsPartner, false, c.evidence, latency)
      }, (err: Error) => {
        if (err instanceof WorkerUnavailableError) { // the worker died or went away: not the model's fault
          run.dropped()
          if (isCurrent(model, r)) recorder.dropped(r, model, 'worker')
          return
        }
        if (!candidateIsPartner) {
          // A canary's live run failed: not the candidate's fault, and nothing to compare with.
          run.liveFailed(err.message)
          recorder.liveFailed(r, model)
          return
        }
        run.failed(err.message)
        // The request's rows, none agreeing.
        const rows = Math.max(1, Object.values(answered)[0]?.dims[0] ?? 1)
        recorder.compared(r, model, 'error', [], candidateIsPartner, true, { rows, agree: 0 })
      })
      .finally(() => {
        r.shadowBusy = false
        run.end()
      })
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
