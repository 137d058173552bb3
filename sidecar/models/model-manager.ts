/**
 * The models this sidecar serves, as the transports and the rollouts ask about them:
 * which version answers a request (`resolve`), whether a model or version is ready and
 * why not (`state`, `ready`), and the repository index. The loop that keeps the table in
 * step with the disk is reconciler.ts; the manager starts and closes it.
 */
import { errors, type SidecarError } from '../core/errors.js'
import type { ModelEntry, ModelTable } from './model-state.js'
import type { ModelVersion } from './model-version.js'
import { Reconciler, type ReconcilerOptions } from './reconciler.js'

export type { AssignedModel } from './reconciler.js'

export type VersionState = 'LOADING' | 'READY' | 'UNAVAILABLE' | 'UNLOADING'

/** What `ModelManager.state()` reports. */
export type ModelStatus =
  | { state: 'READY' }
  | { state: 'LOADING' | 'UNAVAILABLE', reason: string }
  /** Not a model or version this sidecar has: `error` is the 404 that says so. */
  | { state: 'UNKNOWN', error: SidecarError }

export interface IndexEntry {
  name: string
  version: string
  state: VersionState
  reason: string
}

export interface ModelManagerOptions extends ReconcilerOptions {
  /**
   * The version that answers a model's requests without a version when it is not simply the
   * highest serving one (a rollout's live version, or its candidate once promoted); undefined
   * otherwise. Such a request can be served, and the model is ready, only while it serves.
   */
  answering?: (model: string) => number | undefined
}

export class ModelManager {
  #models: ModelTable = new Map()
  #answering: ((model: string) => number | undefined) | undefined
  #reconciler: Reconciler

  constructor (opts: ModelManagerOptions) {
    this.#answering = opts.answering
    this.#reconciler = new Reconciler(opts, this.#models)
  }

  /** The first reconcile, then the timer and the watcher. */
  async start (): Promise<void> {
    await this.#reconciler.start()
  }

  /** Brings the served set in line with the disk. Concurrent calls coalesce into one more pass. */
  async reconcile (): Promise<void> {
    await this.#reconciler.reconcile()
  }

  /** Stops the loop and unloads every version once its queued requests have finished. */
  async close (): Promise<void> {
    await this.#reconciler.close()
  }

  /**
   * Whether a model (version) serves now, and why not. No version: whether a request
   * without a version can be served (READY once any version serves, or, with a rollout,
   * once the version that answers such requests serves). A model or version the sidecar does not have is
   * UNKNOWN, with the 404 error that names it; a malformed version throws a 400.
   */
  state (name: string, version?: string): ModelStatus {
    return this.#lookup(name, version).status
  }

  /** The version to run: the pinned one, the rollout's answering one, or the highest ready one. Throws 400/404/503 errors. */
  resolve (name: string, version?: string): ModelVersion {
    const { mv, status } = this.#lookup(name, version)
    if (mv !== undefined) return mv
    if (status.state === 'UNKNOWN') throw status.error
    throw errors.MODEL_NOT_READY(name, version ?? 'latest', status.state === 'READY' ? '' : status.reason)
  }

  #lookup (name: string, version: string | undefined): { mv?: ModelVersion, status: ModelStatus } {
    const e = this.#models.get(name)
    if (e === undefined) return { status: { state: 'UNKNOWN', error: errors.MODEL_NOT_FOUND(name) } }
    if (version !== undefined) {
      if (!/^[1-9]\d{0,8}$/.test(version)) throw errors.BAD_VERSION(version)
      const n = Number(version)
      const mv = e.versions.get(n)
      if (mv !== undefined) return { mv, status: { state: 'READY' } }
      if (e.loading.has(n)) return { status: { state: 'LOADING', reason: 'loading' } }
      const failed = e.failures.get(n)
      if (failed !== undefined) return { status: { state: 'UNAVAILABLE', reason: failed.reason } }
      return { status: { state: 'UNKNOWN', error: errors.VERSION_NOT_FOUND(name, version) } }
    }
    const answering = this.#answering?.(name)
    if (answering !== undefined) {
      // Another serving version never stands in for it (rollout/rollouts.ts): not ready.
      const mv = e.versions.get(answering)
      if (mv !== undefined) return { mv, status: { state: 'READY' } }
      const status = this.#answeringStatus(e, answering)
      return { status: { state: status.state, reason: status.reason } }
    }
    let best: ModelVersion | undefined
    for (const mv of e.versions.values()) if (best === undefined || mv.version > best.version) best = mv
    if (best !== undefined) return { mv: best, status: { state: 'READY' } }
    const reason = this.#whyNotReady(e)
    return { status: { state: e.reason === '' && e.loading.size > 0 ? 'LOADING' : 'UNAVAILABLE', reason } }
  }

  /** Why the version that answers requests without a version (`answering`) is not serving. */
  #answeringStatus (e: ModelEntry, version: number): { state: 'LOADING' | 'UNAVAILABLE', reason: string } {
    const loading = e.loading.has(version)
    const why = loading ? 'loading' : e.failures.get(version)?.reason ?? (e.reason !== '' ? e.reason : 'not loaded: not in the repository')
    return { state: loading ? 'LOADING' : 'UNAVAILABLE', reason: `version ${version}, the rollout's live version, answers requests without a version and is not serving (${why})` }
  }

  #whyNotReady (e: ModelEntry): string {
    if (e.reason !== '') return e.reason
    if (e.loading.size > 0) return 'loading'
    const f = [...e.failures.values()][0]
    return f?.reason ?? 'not loaded yet'
  }

  /** The model is known (assigned, or present in the repository). */
  has (name: string): boolean {
    return this.#models.has(name)
  }

  /** Every known model (at least one) is READY: a request without a version to any of them can be served. */
  ready (): boolean {
    if (this.#models.size === 0) return false
    for (const name of this.#models.keys()) if (this.state(name).state !== 'READY') return false
    return true
  }

  index (): IndexEntry[] {
    const out: IndexEntry[] = []
    for (const e of [...this.#models.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const versions = new Set([...e.versions.keys(), ...e.loading, ...e.failures.keys(), ...e.unloading])
      // A rollout's live version that is not serving is listed too: it is why the model is not ready.
      const answering = this.#answering?.(e.name)
      if (answering !== undefined) versions.add(answering)
      if (versions.size === 0) out.push({ name: e.name, version: '', state: 'UNAVAILABLE', reason: this.#whyNotReady(e) })
      for (const v of [...versions].sort((a, b) => b - a)) {
        const serving = e.versions.has(v)
        let state: VersionState = 'UNAVAILABLE'
        let reason = e.failures.get(v)?.reason ?? ''
        // What serves is reported: a version whose new file loads while the previous one answers is READY.
        if (serving) state = 'READY'
        else if (e.loading.has(v)) state = 'LOADING'
        else if (e.unloading.has(v)) state = 'UNLOADING'
        if (serving && e.reason !== '') reason = `still serving; ${e.reason}`
        else if (serving && e.loading.has(v)) reason = 'reloading: a new file is loading; the previous one serves until it is ready'
        else if (serving && reason !== '') reason = `still serving the previous file; ${reason}`
        else if (!serving && v === answering) reason = this.#answeringStatus(e, v).reason
        out.push({ name: e.name, version: String(v), state, reason })
      }
    }
    return out
  }
}
