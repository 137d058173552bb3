/**
 * The rollout in progress for each model, and when it starts over (counts at zero, live
 * answering): when its `rollout:` block changes, or when the content of its candidate's
 * model file changes (its fingerprint, a SHA-256), or that of its live version's while it
 * observes. A decided rollout (promoted or rolled back) stays decided while the
 * candidate's content is the same: a new live file does not retry a rolled-back
 * candidate, nor send a promoted one's traffic back to live.
 */
import { isDeepStrictEqual } from 'node:util'
import type { ModelConfig, RolloutConfig } from '../models/config-types.js'
import type { ModelVersion } from '../models/model-version.js'
import { RolloutController } from './controller.js'
import type { RolloutEvents } from './events.js'

/** What the rollouts need of the model manager. */
export interface VersionSource {
  /** A serving version, or throws (not loaded, loading, unknown). */
  resolve: (name: string, version?: string) => ModelVersion
}

/** A serving version of the model, or undefined. */
export function serving (versions: VersionSource, model: string, version: number): ModelVersion | undefined {
  try {
    return versions.resolve(model, String(version))
  } catch {
    return undefined
  }
}

export interface ModelRollout {
  controller: RolloutController
  /** Salt of the sticky hash: a new rollout draws a new cohort. */
  salt: string
  shadowBusy: boolean
  /** Cached compatibility of (live key, candidate key): '' when compatible. */
  compat: { keys: string, problem: string }
  /** Model file fingerprint (content) of each rollout version when first seen serving: see `RolloutTable.current`. */
  files: Map<number, string>
  /** The 'comparisons cannot run' warning was logged. */
  warnedBlocked: boolean
}

export interface RolloutTableDeps {
  versions: VersionSource
  events: RolloutEvents
  /** A rollout ended or starts over: what belonged to it goes (the agreement gauge, the evidence series). */
  ended: (model: string, r: ModelRollout) => void
}

export class RolloutTable {
  #deps: RolloutTableDeps
  #models = new Map<string, ModelRollout>()

  constructor (deps: RolloutTableDeps) {
    this.#deps = deps
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
        this.#deps.ended(model, current)
        this.#deps.events.removed(model)
      }
      return
    }
    if (current !== undefined && isDeepStrictEqual(current.controller.config, rollout)) return
    if (current !== undefined) this.#deps.ended(model, current)
    this.#models.set(model, fresh(model, rollout))
    this.#deps.events.configured(model, rollout, current !== undefined)
  }

  /** The model's rollout as it is, without the file check of `current` (undefined without one). */
  get (model: string): ModelRollout | undefined {
    return this.#models.get(model)
  }

  /** Whether `r` is still the model's rollout (not reconfigured or started over meanwhile). */
  isCurrent (model: string, r: ModelRollout): boolean {
    return this.#models.get(model) === r
  }

  /**
   * The model's rollout, started over when the content of its candidate's model file
   * changed, or that of its live version's while no decision is taken.
   */
  current (model: string): ModelRollout | undefined {
    const r = this.#models.get(model)
    if (r === undefined) return undefined
    const cfg = r.controller.config
    let changed: number[] | undefined
    const now = new Map<number, string>()
    for (const v of [cfg.live, cfg.candidate]) {
      const fp = serving(this.#deps.versions, model, v)?.fingerprint ?? r.files.get(v)
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
      this.#deps.events.decisionStands(model, changed, r.controller.phase)
      return r
    }
    this.#deps.ended(model, r)
    const next = fresh(model, cfg, now)
    this.#models.set(model, next)
    this.#deps.events.fileReplaced(model, changed, r.controller.phase, r.controller.compared)
    return next
  }
}

function fresh (model: string, rollout: RolloutConfig, files = new Map<number, string>()): ModelRollout {
  return { controller: new RolloutController(rollout), salt: `${model}:${rollout.candidate}`, shadowBusy: false, compat: { keys: '', problem: '' }, files, warnedBlocked: false }
}
