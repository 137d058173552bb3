/**
 * Loading, swapping and unloading one model version, for the reconciler (reconciler.ts):
 * a new or changed version loads as a new generation and replaces the serving one only
 * once ready; the one it replaces drains before it is freed. A failed load is remembered
 * with what failed (file, content, settings) and retried when that changes or after a
 * back-off; load durations, failures and readiness are counted.
 */
import type { Logger } from '../../common/logger.js'
import { ModelLoadError } from '../core/errors.js'
import type { SidecarMetrics } from '../core/metrics.js'
import type { ModelConfig } from './config-types.js'
import type { ModelEntry } from './model-state.js'
import { loadModelVersion, unloadModelVersion, type ModelVersion } from './model-version.js'
import type { ScannedModel } from './repository.js'
import type { WorkerPool } from '../runtime/worker-pool.js'

/** A failed load whose files did not change is tried again after this long (1 minute). */
const DEFAULT_RETRY_AFTER_MS = 60_000

export interface VersionLoadsOptions {
  pool: WorkerPool
  metrics: SidecarMetrics
  log: Logger
  /** How long a failed load is left alone when its files do not change. */
  retryAfterMs?: number
  /** See runtime/inline-session.ts; 0 keeps every model on the workers. */
  inlineComputeUs?: number
  /** Whether the manager is closing: a load the closing pool fails is not a broken model. */
  closed: () => boolean
}

export class VersionLoads {
  #opts: VersionLoadsOptions
  #generation = 0

  constructor (opts: VersionLoadsOptions) {
    this.#opts = opts
  }

  /** Loads a version when it is new or its file or settings changed, and swaps it in; a failure is remembered and retried later. */
  async ensureLoaded (e: ModelEntry, scanned: ScannedModel, version: number, config: ModelConfig, configFile: string): Promise<void> {
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
    const batchSize = this.#opts.metrics.batchSize.labels(labels)
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
        onBatch: rows => { batchSize.observe(rows) },
        inlineComputeUs: this.#opts.inlineComputeUs ?? 0
      })
      this.#opts.metrics.modelLoadDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9)
      // The swap: from here on new requests get the new generation; the old one drains.
      e.versions.set(version, mv)
      e.failures.delete(version)
      this.#opts.metrics.modelReady.set(labels, 1)
      this.#opts.log.info({ model: e.name, version, inputs: mv.inputs.map(i => i.name), maxBatchSize: mv.maxBatchSize, runsOn: mv.inline !== undefined ? 'main thread (inline)' : 'workers', ...(mv.inline !== undefined ? { inlineMaxElements: mv.inlineMaxElements } : {}), replaced: current !== undefined }, 'model version ready')
      if (current !== undefined) await this.#retire(e, version, current)
    } catch (err) {
      if (this.#opts.closed()) { // the pool closed under the load: shutdown, not a broken model
        this.#opts.log.info({ model: e.name, version }, 'model version load abandoned: shutting down')
        return
      }
      const reason = err instanceof ModelLoadError ? err.message : `unexpected error: ${(err as Error).message}`
      e.failures.set(version, { key: failureKey, reason, at: Date.now() })
      this.#opts.metrics.modelLoadFailures.inc({ model: e.name })
      this.#opts.log.error({ model: e.name, version, code: (err as ModelLoadError).code, reason, stillServing: current !== undefined }, 'model version failed to load')
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

  async unload (e: ModelEntry, version: number, mv: ModelVersion, why: string): Promise<void> {
    e.versions.delete(version)
    this.#opts.metrics.modelReady.set({ model: e.name, version: String(version) }, 0)
    this.#opts.log.info({ model: e.name, version, why }, 'unloading model version')
    await this.#retire(e, version, mv)
  }

  async unloadAll (e: ModelEntry, why: string): Promise<void> {
    for (const [v, mv] of e.versions) await this.unload(e, v, mv, why)
  }
}
