/**
 * The log lines and spans of the rollouts (rollout/events.ts): the rollout reports what
 * happened; this observer writes it down, as `InferenceObserver` does for a call. A shadow
 * run is a `rollout.shadow` span in the trace of the request it shadows; a canary marks
 * the request's server span with its arm.
 */
import { SpanStatusCode, type Tracer } from '@opentelemetry/api'
import type { Logger } from '../../common/logger.js'
import type { RolloutEvents, ShadowRunEvents } from '../rollout/events.js'

export interface RolloutObserverDeps {
  logger: Logger
  /** Undefined when tracing is off: then no span objects at all. */
  tracer: Tracer | undefined
}

export class RolloutObserver implements RolloutEvents {
  #log: Logger
  #tracer: Tracer | undefined

  constructor (deps: RolloutObserverDeps) {
    this.#log = deps.logger.child({ component: 'rollout' })
    this.#tracer = deps.tracer
  }

  configured: RolloutEvents['configured'] = (model, rollout, restarted) => {
    const promotion = rollout.promotion === undefined ? undefined : { min_requests: rollout.promotion.minRequests, min_agreement: rollout.promotion.minAgreement, max_error_rate_delta: rollout.promotion.maxErrorRateDelta }
    const rollback = rollout.promotion === undefined ? undefined : { below_agreement: rollout.promotion.rollbackBelow }
    this.#log.info({ model, mode: rollout.mode, live: rollout.live, candidate: rollout.candidate, sample: rollout.sample, share: rollout.share, promotion, rollback }, restarted ? 'rollout changed: starting over' : 'rollout configured')
  }

  removed: RolloutEvents['removed'] = model => {
    this.#log.info({ model }, 'rollout removed from config.yaml')
  }

  fileReplaced: RolloutEvents['fileReplaced'] = (model, versions, phase, compared) => {
    this.#log.info({ model, versions, phase, compared }, 'rollout: model file replaced: starting over')
  }

  decisionStands: RolloutEvents['decisionStands'] = (model, versions, phase) => {
    this.#log.info({ model, versions, phase }, 'rollout: live model file replaced; the decision stands')
  }

  incompatible: RolloutEvents['incompatible'] = (model, live, candidate, reason) => {
    this.#log.error({ model, live, candidate, reason }, 'rollout: candidate cannot stand in for live; no shadow or canary traffic')
  }

  blocked: RolloutEvents['blocked'] = (model, live, candidate, workers, needed, reason) => {
    this.#log.warn({ model, live, candidate, workers, needed, reason }, 'rollout: comparisons cannot run; every shadow run is dropped (reason worker) and no decision will be taken')
  }

  canaryRouted: RolloutEvents['canaryRouted'] = (span, arm) => {
    span.setAttributes({ 'onnx_sidecar.rollout': 'canary', 'onnx_sidecar.rollout.arm': arm })
  }

  shadowStarted: RolloutEvents['shadowStarted'] = (run, parent) => {
    const { model, version } = run
    const span = this.#tracer?.startSpan('rollout.shadow', { attributes: { 'onnx_sidecar.rollout': run.mode === 'canary' ? 'canary' : 'shadow', 'onnx_sidecar.model': model, 'onnx_sidecar.version': version, 'onnx_sidecar.rollout.compared_with': run.comparedWith } }, parent)
    const result = (r: string): void => { span?.setAttribute('onnx_sidecar.rollout.result', r) }
    const errored = (message: string): void => { span?.setStatus({ code: SpanStatusCode.ERROR, message }) }
    const events: ShadowRunEvents = {
      compared: agree => { result(agree ? 'agree' : 'disagree') },
      dropped: () => { result('dropped') },
      liveFailed: reason => {
        errored(reason)
        result('live_error')
        this.#log.info({ model, version, reason }, 'rollout: live run for comparison failed; not compared')
      },
      failed: reason => {
        errored(reason)
        result('error')
        this.#log.info({ model, version, reason }, 'rollout: shadow run failed')
      },
      end: () => { span?.end() }
    }
    return events
  }

  promoted: RolloutEvents['promoted'] = (model, version, previous, mode, evidence) => {
    this.#log.info({ model, version, previous, mode, evidence }, 'rollout: candidate promoted to live')
  }

  rolledBack: RolloutEvents['rolledBack'] = (model, version, live, mode, evidence) => {
    this.#log.warn({ model, version, live, mode, evidence }, 'rollout: candidate rolled back')
  }

  inconclusive: RolloutEvents['inconclusive'] = (model, version, live, mode, evidence) => {
    this.#log.warn({ model, version, live, mode, evidence }, 'rollout: inconclusive; live keeps answering')
  }
}
