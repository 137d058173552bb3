/**
 * Which version answers a request without an explicit version while a rollout is
 * configured: its live version (the candidate once promoted), the candidate for a canary's
 * sticky share (rollout/sticky.ts), or, when that version is not serving, a 503 (never
 * another version). Also which requests are sampled for shadow work (rollout/shadow.ts).
 * Requests that name a version never reach a rollout.
 */
import type { Context, Span } from '@opentelemetry/api'
import { errors, SidecarError } from '../core/errors.js'
import type { InferRequest } from '../codec/infer-request.js'
import type { ModelVersion } from '../models/model-version.js'
import type { WireTensor } from '../runtime/protocol.js'
import type { Arm } from './controller.js'
import type { RolloutEvents } from './events.js'
import { serving, type ModelRollout, type RolloutTable, type VersionSource } from './model-rollout.js'
import type { RolloutRecorder } from './recording.js'
import type { ShadowRunner } from './shadow.js'
import { inCanary } from './sticky.js'

/** What a transport knows about a call that routing may use. */
export interface RouteCall {
  requestId: string
  /** The sidecar's own warm-up: never routed (no canary pick, no shadow, no evidence). */
  quiet?: boolean
  /** A request header (REST) or metadata value (gRPC), lower-case name. */
  header?: (name: string) => string | undefined
}

/** A request the rollout routed: `mv` answers it; call `finish` once the answer is encoded (or failed). */
export interface Routed {
  mv: ModelVersion
  finish: (status: number, outputs: Record<string, WireTensor> | undefined, ctx: Context) => void
}

export interface RouterDeps {
  versions: VersionSource
  table: Pick<RolloutTable, 'current' | 'get'>
  shadow: Pick<ShadowRunner, 'admit' | 'release' | 'afterAnswer' | 'blocked'>
  recorder: Pick<RolloutRecorder, 'routed' | 'served'>
  events: RolloutEvents
  /** Sampling source in [0, 1). */
  random: () => number
}

export class RolloutRouter {
  #deps: RouterDeps

  constructor (deps: RouterDeps) {
    this.#deps = deps
  }

  /**
   * The version that answers a request without a version: undefined without a rollout;
   * the rollout's live version (the candidate once promoted); throws 503 OS_ERR_MODEL_NOT_READY
   * when that version is not serving (another version never stands in for it).
   */
  live (model: string): ModelVersion | undefined {
    const r = this.#deps.table.current(model)
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

  /** Routes a decoded request that `live()` resolved; undefined when no rollout work applies. */
  route (live: ModelVersion, request: InferRequest, call: RouteCall, span: Span): Routed | undefined {
    const r = this.#deps.table.get(live.name)
    if (r === undefined || r.controller.phase !== 'observing' || live.version !== r.controller.config.live || call.quiet === true) return undefined
    const cfg = r.controller.config
    const candidate = serving(this.#deps.versions, live.name, cfg.candidate)
    if (candidate === undefined || this.problem(r, live, candidate) !== '') return undefined
    const { shadow, recorder } = this.#deps

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
      recorder.routed(live.name, answer.version, arm)
      this.#deps.events.canaryRouted(span, arm)
    }

    // Shadow work is sampled and gated now (its inputs copied now, see shadow.ts).
    const routedAt = performance.now()
    let shadowFeeds: Record<string, WireTensor> | undefined
    if (partner !== undefined && cfg.sample > 0 && (cfg.sample >= 1 || this.#deps.random() < cfg.sample)) {
      shadowFeeds = shadow.admit(r, live, candidate, request.feeds)
    }
    return {
      mv: answer,
      finish: (status, outputs, ctx) => {
        if (status !== 499) {
          // Shadow mode counts candidate runs when they finish; here only the answering arm.
          recorder.served(r, live.name, arm, status >= 500)
        }
        if (shadowFeeds === undefined || partner === undefined) return
        if (status !== 200 || outputs === undefined) {
          shadow.release(r)
          return
        }
        shadow.afterAnswer(r, shadowFeeds, answer, outputs, partner, ctx, performance.now() - routedAt)
      }
    }
  }

  /** Why the candidate cannot stand in for live ('' when it can); cached per pair of loaded sessions. */
  problem (r: ModelRollout, live: ModelVersion, candidate: ModelVersion): string {
    const keys = `${live.key}|${candidate.key}`
    if (r.compat.keys !== keys) {
      r.compat = { keys, problem: incompatibility(live, candidate, r.controller.config.compareOutput) }
      if (r.compat.problem !== '') this.#deps.events.incompatible(live.name, live.version, candidate.version, r.compat.problem)
    }
    return r.compat.problem
  }
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
