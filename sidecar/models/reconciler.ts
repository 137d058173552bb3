/**
 * Keeps the served models in step with the repository on disk: the loop behind
 * `ModelManager` (model-manager.ts), which answers lookups from the table it fills.
 *
 * `reconcile()` scans the repository and, per assigned model: loads versions that
 * appeared or whose file or settings changed (by content: a `touch` is no change; new generation, warmed up before it is routed to), swaps them in
 * atomically, and unloads versions the version policy no longer wants once their queued
 * requests have finished. A broken config, a broken or half-written file, or a missing
 * model never takes a serving version down: the failure is logged, counted, shown in
 * the repository index, and retried when the file changes (or after a back-off).
 * Reconciles run one at a time: on start, on file-system events, and on a timer. Loading,
 * swapping and unloading one version is version-loads.ts.
 */
import { watch, type FSWatcher } from 'node:fs'
import path from 'node:path'
import type { Logger } from '../../common/logger.js'
import type { FleetCandidate } from '../../common/contract.js'
import type { ModelConfig, RolloutConfig } from './config-types.js'
import { parseModelConfig, selectVersions } from './model-config.js'
import { fleetRollout } from './rollout-config.js'
import type { ModelEntry, ModelTable } from './model-state.js'
import { FingerprintCache, listModels, scanModel, type ScannedModel } from './repository.js'
import { VersionLoads } from './version-loads.js'
import type { SidecarMetrics } from '../core/metrics.js'
import type { WorkerPool } from '../runtime/worker-pool.js'

/** How long a model that vanished while serving gets to reappear before it is unloaded (a directory swap). */
const SWAP_SETTLE_MS = 250 // 0.25 seconds
const CLOSE_WAIT_MS = 1000 // how long close() waits for a scan or load in progress (1 second)
/** File-system events settle this long before a rescan: writers touch several files in a row (0.2 seconds). */
const WATCH_DEBOUNCE_MS = 200

export interface AssignedModel {
  name: string
  /** Pinned version; undefined follows the model's version policy. */
  version?: number
}

export interface ReconcilerOptions {
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
  /** `--candidate` / `--canary`: a rollout the fleet decides, which wins over the model's `rollout:` block. */
  fleet?: FleetCandidate
}

export class Reconciler {
  #opts: ReconcilerOptions
  #log: Logger
  #models: ModelTable
  /** Model files are hashed only when their stat changes (repository.ts). */
  #fingerprints = new FingerprintCache()
  #loads: VersionLoads
  #running: Promise<void> | undefined
  #again = false
  #timer: NodeJS.Timeout | undefined
  #watcher: FSWatcher | undefined
  #debounce: NodeJS.Timeout | undefined
  #closed = false
  /** The fleet candidate had no live version to run against (warned once until it has). */
  #fleetAlone = false

  constructor (opts: ReconcilerOptions, models: ModelTable) {
    this.#opts = opts
    this.#models = models
    this.#log = opts.logger.child({ component: 'model-manager' })
    this.#loads = new VersionLoads({ pool: opts.pool, metrics: opts.metrics, log: this.#log, retryAfterMs: opts.retryAfterMs, inlineComputeUs: opts.inlineComputeUs, closed: () => this.#closed })
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
        await this.#loads.unloadAll(e, 'model removed from the repository')
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
      await this.#loads.unloadAll(e, 'model directory removed')
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
    const available = scanned.versions.map(v => v.version)
    // A pinned model serves exactly its pin: a `rollout:` block in the (shared) repository
    // is for the pods that follow the version policy, not for this one. A fleet candidate
    // (`--candidate`) is this pod's rollout, whatever the block says.
    const rollout = this.#rollout(e.name, config, available, pinned)
    if (rollout !== config.rollout) config = { ...config, rollout }
    this.#opts.onConfig?.(e.name, config)
    const pinnedAndCandidate = (v: number): boolean => v === pinned || v === rollout?.candidate
    const wanted = pinned !== undefined ? available.filter(pinnedAndCandidate) : selectVersions(config.versionPolicy, available, config.rollout)
    if (wanted.length === 0) {
      const why = pinned !== undefined
        ? `version ${pinned} not found in '${scanned.dir}'`
        : `no version directory with a model.onnx in '${scanned.dir}'`
      this.#setReason(e, why)
      await this.#loads.unloadAll(e, why)
      return
    }
    this.#setReason(e, '')

    for (const v of wanted) await this.#loads.ensureLoaded(e, scanned, v, config, configFile)

    // Serve what the policy selects among the versions that actually loaded; a version
    // that failed does not push a working one out.
    const loaded = [...e.versions.keys()].filter(v => available.includes(v))
    const keep = new Set(pinned !== undefined ? loaded.filter(pinnedAndCandidate) : selectVersions(config.versionPolicy, loaded, config.rollout))
    for (const [v, mv] of e.versions) {
      if (!keep.has(v)) await this.#loads.unload(e, v, mv, 'no longer selected by the version policy')
    }
    for (const v of e.failures.keys()) if (!available.includes(v)) e.failures.delete(v)
  }

  /**
   * The model's rollout: the fleet's (live: the pinned version, else the highest the
   * policy serves besides the candidate), else the block's unless the model is pinned.
   */
  #rollout (model: string, config: ModelConfig, available: number[], pinned: number | undefined): RolloutConfig | undefined {
    const fleet = this.#opts.fleet
    if (fleet?.model !== model) return pinned !== undefined ? undefined : config.rollout
    const live = pinned ?? selectVersions(config.versionPolicy, available.filter(v => v !== fleet.version))[0]
    if (live === undefined) {
      if (!this.#fleetAlone) this.#log.warn({ model, candidate: fleet.version, available }, 'rollout: --candidate has no other version to run against; serving by the version policy, no rollout')
      this.#fleetAlone = true
      return undefined
    }
    this.#fleetAlone = false
    return fleetRollout(config.rollout, fleet, live)
  }

  #setReason (e: ModelEntry, reason: string, failure = false): void {
    if (reason !== '' && reason !== e.reason) {
      if (failure) this.#opts.metrics.modelLoadFailures.inc({ model: e.name })
      this.#log.error({ model: e.name, reason, stillServing: e.versions.size > 0 }, 'model cannot be loaded')
    }
    e.reason = reason
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
    for (const e of this.#models.values()) await this.#loads.unloadAll(e, 'shutting down')
  }
}
