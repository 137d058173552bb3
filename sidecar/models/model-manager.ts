/**
 * Keeps the served models in step with the repository on disk.
 *
 * `reconcile()` scans the repository and, per assigned model: loads versions that
 * appeared or whose file or settings changed (by content: a `touch` is no change; new generation, warmed up before it is routed to), swaps them in
 * atomically, and unloads versions the version policy no longer wants once their queued
 * requests have finished. A broken config, a broken or half-written file, or a missing
 * model never takes a serving version down: the failure is logged, counted, shown in
 * the repository index, and retried when the file changes (or after a back-off).
 * Reconciles run one at a time: on start, on file-system events, and on a timer.
 */
import { watch, type FSWatcher } from 'node:fs'
import path from 'node:path'
import type { Logger } from '../../common/logger.js'
import { errors, ModelLoadError, type SidecarError } from '../core/errors.js'
import type { ModelConfig } from './config-types.js'
import { parseModelConfig, selectVersions } from './model-config.js'
import { loadModelVersion, unloadModelVersion, type ModelVersion } from './model-version.js'
import { FingerprintCache, listModels, scanModel, type ScannedModel } from './repository.js'
import type { SidecarMetrics } from '../core/metrics.js'
import type { WorkerPool } from '../runtime/worker-pool.js'

/** How long a model that vanished while serving gets to reappear before it is unloaded (a directory swap). */
const SWAP_SETTLE_MS = 250 // 0.25 seconds
const CLOSE_WAIT_MS = 1000 // how long close() waits for a scan or load in progress (1 second)
/** File-system events settle this long before a rescan: writers touch several files in a row (0.2 seconds). */
const WATCH_DEBOUNCE_MS = 200
/** A failed load whose files did not change is tried again after this long (1 minute). */
const DEFAULT_RETRY_AFTER_MS = 60_000

export interface AssignedModel {
  name: string
  /** Pinned version; undefined follows the model's version policy. */
  version?: number
}

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

interface Failure {
  key: string
  reason: string
  at: number
}

interface ModelEntry {
  name: string
  /** Serving versions, by number. */
  versions: Map<number, ModelVersion>
  /** Why the model as a whole cannot serve (missing, bad config); '' when fine. */
  reason: string
  /** Load failures by version number, remembered with what failed to load. */
  failures: Map<number, Failure>
  loading: Set<number>
  unloading: Set<number>
}

export interface ModelManagerOptions {
  repository: string
  /** Undefined or empty: every model in the repository. */
  assigned?: AssignedModel[]
  pool: WorkerPool
  logger: Logger
  metrics: SidecarMetrics
  /** Periodic rescan; 0 disables the timer (tests call reconcile()). */
  pollIntervalMs: number
  /** Watch the repository for changes (in addition to the timer). */
  watch: boolean
  /** How long a failed load is left alone when its files do not change. */
  retryAfterMs?: number
  /** Called after every reconcile pass (readiness may have changed). */
  onChange?: () => void
  /** See runtime/inline-session.ts; 0 keeps every model on the workers. */
  inlineComputeUs?: number
  /** A model's config.yaml parsed (undefined: the model left the repository); rollouts follow it. */
  onConfig?: (model: string, config: ModelConfig | undefined) => void
  /**
   * The version that answers a model's requests without a version when it is not simply the
   * highest serving one (a rollout's live version, or its candidate once promoted); undefined
   * otherwise. Such a request can be served, and the model is ready, only while it serves.
   */
  answering?: (model: string) => number | undefined
}

export class ModelManager {
  #opts: ModelManagerOptions
  #log: Logger
  #models = new Map<string, ModelEntry>()
  /** Model files are hashed only when their stat changes (repository.ts). */
  #fingerprints = new FingerprintCache()
  #generation = 0
  #running: Promise<void> | undefined
  #again = false
  #timer: NodeJS.Timeout | undefined
  #watcher: FSWatcher | undefined
  #debounce: NodeJS.Timeout | undefined
  #closed = false

  constructor (opts: ModelManagerOptions) {
    this.#opts = opts
    this.#log = opts.logger.child({ component: 'model-manager' })
    for (const a of opts.assigned ?? []) this.#entry(a.name)
    opts.pool.on('reload-failed', this.#onReloadFailed)
  }

  /** A serving version failed to load into a replacement worker (the pool logged why): count it. */
  #onReloadFailed = (key: string): void => {
    for (const e of this.#models.values()) {
      for (const mv of e.versions.values()) if (mv.key === key) this.#opts.metrics.modelLoadFailures.inc({ model: e.name })
    }
  }

  async start (): Promise<void> {
    await this.reconcile()
    if (this.#closed) return // closed while the first scan ran: no timer or watcher to leak
    if (this.#opts.pollIntervalMs > 0) {
      this.#timer = setInterval(() => { this.reconcile().catch(() => {}) }, this.#opts.pollIntervalMs)
      this.#timer.unref()
    }
    if (this.#opts.watch) {
      try {
        this.#watcher = watch(this.#opts.repository, { recursive: true }, () => this.#onChange())
        this.#watcher.on('error', (err) => this.#log.warn({ err }, 'repository watch failed; relying on the periodic rescan'))
      } catch (err) {
        this.#log.warn({ err }, 'cannot watch the repository; relying on the periodic rescan')
      }
    }
  }

  #onChange (): void {
    if (this.#debounce !== undefined) clearTimeout(this.#debounce)
    // Writers touch several files in a row (a new version dir, then the model file): settle first.
    this.#debounce = setTimeout(() => { this.reconcile().catch(() => {}) }, WATCH_DEBOUNCE_MS)
    this.#debounce.unref()
  }

  #entry (name: string): ModelEntry {
    let e = this.#models.get(name)
    if (e === undefined) {
      e = { name, versions: new Map(), reason: '', failures: new Map(), loading: new Set(), unloading: new Set() }
      this.#models.set(name, e)
    }
    return e
  }

  /** Brings the served set in line with the disk. Concurrent calls coalesce into one more pass. */
  reconcile (): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true
      return this.#running
    }
    this.#running = (async () => {
      do {
        this.#again = false
        try {
          await this.#reconcileOnce()
        } catch (err) {
          this.#log.error({ err }, 'repository scan failed')
        }
        this.#opts.onChange?.()
      } while (this.#again && !this.#closed)
    })().finally(() => { this.#running = undefined })
    return this.#running
  }

  async #reconcileOnce (): Promise<void> {
    if (this.#closed) return
    const assigned = this.#opts.assigned
    // A repository that cannot be listed (a dangling symlink swap, a volume being
    // remounted) says nothing about the models: keep serving what is loaded.
    let listed: string[]
    try {
      listed = await listModels(this.#opts.repository)
    } catch (err) {
      const reason = `cannot read the model repository '${this.#opts.repository}': ${(err as Error).message}`
      this.#log.warn({ err: (err as Error).message, repository: this.#opts.repository }, 'cannot read the model repository; keeping what is loaded')
      for (const name of assigned?.map(a => a.name) ?? []) this.#entry(name)
      for (const e of this.#models.values()) if (e.versions.size === 0) this.#setReason(e, reason)
      return
    }
    let names: string[]
    if (assigned !== undefined && assigned.length > 0) {
      names = assigned.map(a => a.name)
    } else {
      names = listed
      let gone = [...this.#models.keys()].filter(n => !names.includes(n))
      if (gone.some(n => (this.#models.get(n) as ModelEntry).versions.size > 0)) {
        // Writers swap model directories (rename away, rename back): look again before unloading.
        await new Promise(resolve => setTimeout(resolve, SWAP_SETTLE_MS))
        const again = await listModels(this.#opts.repository).catch(() => names)
        names = [...new Set([...names, ...again])]
        gone = gone.filter(n => !again.includes(n))
      }
      for (const name of gone) {
        const e = this.#models.get(name) as ModelEntry
        await this.#unloadAll(e, 'model removed from the repository')
        this.#models.delete(name)
        this.#opts.onConfig?.(name, undefined)
      }
    }
    for (const name of names) this.#entry(name)
    for (const name of names) {
      if (this.#closed) return
      await this.#reconcileModel(this.#entry(name), assigned?.find(a => a.name === name)?.version)
    }
  }

  /** Scans a model; when it looks gone while versions serve, looks again before believing it (writers swap directories). */
  async #scan (e: ModelEntry): Promise<ScannedModel | undefined> {
    const first = await scanModel(this.#opts.repository, e.name, this.#fingerprints)
    if (e.versions.size === 0 || (first !== undefined && first.versions.length > 0)) return first
    await new Promise(resolve => setTimeout(resolve, SWAP_SETTLE_MS))
    return await scanModel(this.#opts.repository, e.name, this.#fingerprints)
  }

  async #reconcileModel (e: ModelEntry, pinned: number | undefined): Promise<void> {
    const scanned = await this.#scan(e)
    if (scanned === undefined) {
      this.#setReason(e, `model directory '${path.join(this.#opts.repository, e.name)}' not found in the repository`)
      await this.#unloadAll(e, 'model directory removed')
      return
    }
    const configFile = path.join(scanned.dir, 'config.yaml')
    let config: ModelConfig
    try {
      config = parseModelConfig(scanned.configText, configFile)
    } catch (err) {
      // A broken config never replaces a working one: keep serving what is loaded.
      this.#setReason(e, (err as Error).message, true)
      return
    }
    // A pinned model serves exactly its pin: a `rollout:` block in the (shared) repository
    // is for the pods that follow the version policy, not for this one.
    this.#opts.onConfig?.(e.name, pinned !== undefined && config.rollout !== undefined ? { ...config, rollout: undefined } : config)
    const available = scanned.versions.map(v => v.version)
    const wanted = pinned !== undefined ? available.filter(v => v === pinned) : selectVersions(config.versionPolicy, available, config.rollout)
    if (wanted.length === 0) {
      const why = pinned !== undefined
        ? `version ${pinned} not found in '${scanned.dir}'`
        : `no version directory with a model.onnx in '${scanned.dir}'`
      this.#setReason(e, why)
      await this.#unloadAll(e, why)
      return
    }
    this.#setReason(e, '')

    for (const v of wanted) await this.#ensureLoaded(e, scanned, v, config, configFile)

    // Serve what the policy selects among the versions that actually loaded; a version
    // that failed does not push a working one out.
    const loaded = [...e.versions.keys()].filter(v => available.includes(v))
    const keep = new Set(pinned !== undefined ? loaded.filter(v => v === pinned) : selectVersions(config.versionPolicy, loaded, config.rollout))
    for (const [v, mv] of e.versions) {
      if (!keep.has(v)) await this.#unload(e, v, mv, 'no longer selected by the version policy')
    }
    for (const v of e.failures.keys()) if (!available.includes(v)) e.failures.delete(v)
  }

  async #ensureLoaded (e: ModelEntry, scanned: ScannedModel, version: number, config: ModelConfig, configFile: string): Promise<void> {
    const sv = scanned.versions.find(x => x.version === version)
    if (sv === undefined) return
    const current = e.versions.get(version)
    // Same content at the same path (a `touch` included): nothing to reload. The same content
    // at a new path (a Kubernetes `..data` flip) is loaded again, since a worker that replaces
    // a dead one reads the file by its path and the old directory goes away.
    if (current !== undefined && current.file === sv.file && current.fingerprint === sv.fingerprint && current.settingsFingerprint === scanned.settingsFingerprint) return
    const failureKey = `${sv.file}|${sv.fingerprint}|${scanned.settingsFingerprint}`
    const failed = e.failures.get(version)
    if (failed !== undefined && failed.key === failureKey && Date.now() - failed.at < (this.#opts.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS)) return

    const labels = { model: e.name, version: String(version) }
    const started = process.hrtime.bigint()
    e.loading.add(version)
    try {
      const mv = await loadModelVersion({
        pool: this.#opts.pool,
        name: e.name,
        version,
        file: sv.file,
        fingerprint: sv.fingerprint,
        settingsFingerprint: scanned.settingsFingerprint,
        config,
        configFile,
        labels: scanned.labels,
        generation: ++this.#generation,
        onBatch: rows => this.#opts.metrics.batchSize.observe(labels, rows),
        inlineComputeUs: this.#opts.inlineComputeUs ?? 0
      })
      this.#opts.metrics.modelLoadDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9)
      // The swap: from here on new requests get the new generation; the old one drains.
      e.versions.set(version, mv)
      e.failures.delete(version)
      this.#opts.metrics.modelReady.set(labels, 1)
      this.#log.info({ model: e.name, version, inputs: mv.inputs.map(i => i.name), maxBatchSize: mv.maxBatchSize, runsOn: mv.inline !== undefined ? 'main thread (inline)' : 'workers', replaced: current !== undefined }, 'model version ready')
      if (current !== undefined) await this.#retire(e, version, current)
    } catch (err) {
      if (this.#closed) { // the pool closed under the load: shutdown, not a broken model
        this.#log.info({ model: e.name, version }, 'model version load abandoned: shutting down')
        return
      }
      const reason = err instanceof ModelLoadError ? err.message : `unexpected error: ${(err as Error).message}`
      e.failures.set(version, { key: failureKey, reason, at: Date.now() })
      this.#opts.metrics.modelLoadFailures.inc({ model: e.name })
      this.#log.error({ model: e.name, version, code: (err as ModelLoadError).code, reason, stillServing: current !== undefined }, 'model version failed to load')
    } finally {
      e.loading.delete(version)
    }
  }

  async #retire (e: ModelEntry, version: number, old: ModelVersion): Promise<void> {
    e.unloading.add(version)
    try {
      await unloadModelVersion(this.#opts.pool, old)
    } finally {
      e.unloading.delete(version)
    }
  }

  async #unload (e: ModelEntry, version: number, mv: ModelVersion, why: string): Promise<void> {
    e.versions.delete(version)
    this.#opts.metrics.modelReady.set({ model: e.name, version: String(version) }, 0)
    this.#log.info({ model: e.name, version, why }, 'unloading model version')
    await this.#retire(e, version, mv)
  }

  async #unloadAll (e: ModelEntry, why: string): Promise<void> {
    for (const [v, mv] of e.versions) await this.#unload(e, v, mv, why)
  }

  #setReason (e: ModelEntry, reason: string, failure = false): void {
    if (reason !== '' && reason !== e.reason) {
      if (failure) this.#opts.metrics.modelLoadFailures.inc({ model: e.name })
      this.#log.error({ model: e.name, reason, stillServing: e.versions.size > 0 }, 'model cannot be loaded')
    }
    e.reason = reason
  }

  // ---- what the transports ask ---------------------------------------------------

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
    const answering = this.#opts.answering?.(name)
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
      const answering = this.#opts.answering?.(e.name)
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

  async close (): Promise<void> {
    this.#closed = true
    this.#opts.pool.off('reload-failed', this.#onReloadFailed)
    if (this.#timer !== undefined) clearInterval(this.#timer)
    if (this.#debounce !== undefined) clearTimeout(this.#debounce)
    this.#watcher?.close()
    // A load in progress can take minutes (a big model, its warm-up): wait for it only
    // briefly; closing the pool afterwards fails it, and a closed manager starts no other.
    const running = this.#running
    if (running !== undefined) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([running, new Promise<void>(resolve => { timer = setTimeout(resolve, CLOSE_WAIT_MS) })])
      clearTimeout(timer)
    }
    for (const e of this.#models.values()) await this.#unloadAll(e, 'shutting down')
  }
}
