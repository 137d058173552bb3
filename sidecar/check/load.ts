/**
 * Loads a model repository for `check` exactly as `serve` does: the same scan, config.yaml
 * parser, signature and warm-up (models/), one `ModelManager` per version on disk, pinned
 * to it so every version loads, not only those the version policy serves. The sessions run
 * on an in-process pool (`serve --inference-thread main`): the same ONNX Runtime, no threads.
 */
import path from 'node:path'
import type { Logger } from '../../common/logger.js'
import { createSidecarMetrics } from '../core/metrics.js'
import { ModelManager } from '../models/model-manager.js'
import type { ModelVersion } from '../models/model-version.js'
import { listModels, scanModel } from '../models/repository.js'
import { WorkerPool } from '../runtime/worker-pool.js'

export interface LoadedVersion {
  model: string
  version: number
  /** The model directory (golden cases live beside its versions). */
  dir: string
  /** Undefined when it did not load; `reason` says why. */
  mv: ModelVersion | undefined
  reason: string
  seconds: number
}

export interface LoadedRepository {
  repository: string
  /** By model name, every version on disk, lowest first; a model with no version has one entry with version 0. */
  models: Map<string, LoadedVersion[]>
  close: () => Promise<void>
}

export async function loadRepository (repository: string, logger: Logger, only?: string[]): Promise<LoadedRepository> {
  const pool = new WorkerPool({ workers: 1, threads: 1, logger, inProcess: true })
  const metrics = createSidecarMetrics({ defaultMetrics: false })
  const managers: ModelManager[] = []
  const models = new Map<string, LoadedVersion[]>()
  const close = async (): Promise<void> => {
    for (const m of managers) await m.close()
    await pool.close()
  }
  try {
    const names = (await listModels(repository)).filter(n => only === undefined || only.includes(n))
    for (const name of names) {
      const scanned = await scanModel(repository, name)
      const dir = scanned?.dir ?? path.join(repository, name)
      const versions = scanned?.versions.map(v => v.version) ?? []
      const loaded: LoadedVersion[] = []
      if (versions.length === 0) loaded.push({ model: name, version: 0, dir, mv: undefined, reason: `no version directory with a model.onnx in '${dir}'`, seconds: 0 })
      for (const version of versions) {
        const started = performance.now()
        const manager = new ModelManager({ repository, assigned: [{ name, version }], pool, logger, metrics, pollIntervalMs: 0, watch: false, inlineComputeUs: 0 })
        managers.push(manager)
        await manager.start()
        const seconds = (performance.now() - started) / 1000
        const status = manager.state(name, String(version))
        if (status.state === 'READY') {
          loaded.push({ model: name, version, dir, mv: manager.resolve(name, String(version)), reason: '', seconds })
        } else {
          // A config that does not parse fails the model, not the version: the model's reason says why.
          const model = manager.state(name)
          const reason = status.state === 'UNKNOWN' ? (model.state === 'LOADING' || model.state === 'UNAVAILABLE' ? model.reason : status.error.message) : status.reason
          loaded.push({ model: name, version, dir, mv: undefined, reason, seconds })
        }
      }
      models.set(name, loaded)
    }
  } catch (err) {
    await close()
    throw err
  }
  return { repository, models, close }
}

/** The version a request without a version would reach among those that loaded: the highest. */
export function servingVersion (versions: LoadedVersion[]): LoadedVersion | undefined {
  let best: LoadedVersion | undefined
  for (const v of versions) if (v.mv !== undefined && (best === undefined || v.version > best.version)) best = v
  return best
}
