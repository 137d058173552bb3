/**
 * The inference dispatcher: what happens to a decoded request, whatever protocol carried it.
 * It resolves the version that answers (the rollout's live version for a request that
 * names none), lets a rollout route the request (canary, shadow sample), queues it on the
 * version's batcher under its deadline, and hands back the outputs.
 *
 * The transports (`http/app.ts` REST, `grpc/service.ts`) read, decode and encode; the
 * observation (`observation.ts`) owns spans, metrics and logs. A call goes:
 *
 *   observer.observe(call, async obs => {
 *     raw      = transport reads
 *     mv       = runner.resolve(call, obs)
 *     request  = obs.step('preprocess', () => transport decodes raw against mv)
 *     answer   = await runner.execute(mv, request, call, obs)
 *     return obs.step('postprocess', () => transport encodes answer)
 *   })
 */
import type { Context } from '@opentelemetry/api'
import type { InferRequest } from '../codec/infer-request.js'
import type { ModelManager } from '../models/model-manager.js'
import type { ModelVersion } from '../models/model-version.js'
import type { Observation, ObservedCall } from './observation.js'
import type { WireTensor } from '../runtime/protocol.js'
import type { Rollouts } from '../rollout/rollouts.js'

const NS_PER_US = 1000n

export interface InferCall extends ObservedCall {
  /** As the client gave it; undefined or '' for the version policy's pick. */
  version: string | undefined
  /** True once nobody waits for the answer (client gone, call cancelled). */
  abandoned: () => boolean
  /** A deadline the transport imposes (gRPC), absolute hrtime ns; 0n for none. */
  deadlineNs?: bigint
  /** A request header (REST) or metadata value (gRPC) by lower-case name: a canary's sticky key. */
  header?: (name: string) => string | undefined
}

/** The version that answered and its outputs. */
export interface Answer {
  mv: ModelVersion
  outputs: Record<string, WireTensor>
}

export interface InferenceDispatcherDeps {
  manager: Pick<ModelManager, 'resolve'>
  /** Shadow / canary rollouts (rollout/rollouts.ts); undefined: none. */
  rollouts?: Pick<Rollouts, 'live' | 'route'>
}

/** The earlier of two absolute deadlines in hrtime ns, 0n meaning none. */
export function earlierDeadline (a: bigint, b: bigint): bigint {
  if (a === 0n) return b
  if (b === 0n) return a
  return a < b ? a : b
}

export class InferenceDispatcher {
  #deps: InferenceDispatcherDeps

  constructor (deps: InferenceDispatcherDeps) {
    this.#deps = deps
  }

  /** The version that answers the call: a pinned one, else a rollout's live one, else the policy's pick. Throws 400/404/503. */
  resolve (call: Pick<InferCall, 'model' | 'version'>, obs: Pick<Observation, 'answeredBy'>): ModelVersion {
    const pinned = call.version === '' ? undefined : call.version
    const mv = (pinned === undefined ? this.#deps.rollouts?.live(call.model) : undefined) ?? this.#deps.manager.resolve(call.model, pinned)
    obs.answeredBy(mv)
    return mv
  }

  /**
   * Runs a request decoded against `mv` (from `resolve`): a rollout may hand it to its
   * candidate; then it waits on the batcher. Rejects with the batcher's errors (503, 504, 499).
   */
  async execute (mv: ModelVersion, request: InferRequest, call: InferCall, obs: Observation): Promise<Answer> {
    const pinned = call.version !== undefined && call.version !== ''
    // A quiet call (the warm-up) goes through `route` as a client's does; the router leaves it out of a rollout.
    const routed = pinned ? undefined : this.#deps.rollouts?.route(mv, request, call, obs.span)
    if (routed !== undefined) {
      obs.onEnd((status: number, outputs: Record<string, WireTensor> | undefined, ctx: Context) => routed.finish(status, outputs, ctx))
      if (routed.mv !== mv) {
        mv = routed.mv
        obs.answeredBy(mv)
      }
    }
    const enqueuedNs = process.hrtime.bigint()
    const requested = request.timeoutUs > 0 ? enqueuedNs + BigInt(request.timeoutUs) * NS_PER_US : 0n
    const result = await mv.batcher.submit({
      rows: request.rows,
      feeds: request.feeds,
      fetches: mv.outputs.map(o => o.name),
      enqueuedNs,
      deadlineNs: earlierDeadline(requested, call.deadlineNs ?? 0n),
      abandoned: call.abandoned,
      quiet: call.quiet
    })
    obs.batched(result, enqueuedNs)
    return { mv, outputs: result.outputs }
  }
}
