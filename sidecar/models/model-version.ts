/**
 * A model version's serving handle: loading one (read the file, create a session in every
 * worker, derive its signature (signature.ts) from the session's metadata and config.yaml,
 * warm it up) hands back a `ModelVersion` ready to take requests, and unloading drains it.
 */
import { stat } from 'node:fs/promises'
import { ModelLoadError } from '../core/errors.js'
import { allocate, elementCount } from '../core/datatypes.js'
import type { ModelConfig } from './config-types.js'
import { signatureOf, type ModelSignature } from './signature.js'
import { Batcher } from '../runtime/batcher.js'
import type { WireTensor, ValueMeta } from '../runtime/protocol.js'
import type { WorkerPool } from '../runtime/worker-pool.js'
import { InlineSession } from '../runtime/inline-session.js'
import { readModelFile } from '../runtime/model-file.js'
import { inlineRows } from '../runtime/inline-rows.js'

/**
 * A loaded version as it serves: its signature (what the codec reads), the file and
 * settings it was loaded from (what a reload compares), and what runs it.
 */
export interface ModelVersion extends ModelSignature {
  /** The worker pool's key for this load (`name/version#generation`). */
  key: string
  file: string
  fingerprint: string
  settingsFingerprint: string
  batcher: Batcher
  /** Set when the model is small enough to run on the main thread (see runtime/inline-session.ts). */
  inline: InlineSession | undefined
  /** Batches with at most this many input elements run inline (what the warm-up measured within the budget); 0 without `inline`. */
  inlineMaxElements: number
}

export interface LoadParams {
  pool: WorkerPool
  name: string
  version: number
  file: string
  fingerprint: string
  settingsFingerprint: string
  config: ModelConfig
  configFile: string
  labels: string[] | undefined
  generation: number
  onBatch: (rows: number) => void
  /**
   * Run on the main thread batches up to the size of a warm-up batch (max_batch_size rows,
   * dynamic non-batch dimensions 1) when that batch computes within this many µs; 0: never.
   */
  inlineComputeUs: number
}

export async function loadModelVersion (p: LoadParams): Promise<ModelVersion> {
  // The workers read the file themselves: the main thread holds no copy of the weights.
  const st = await stat(p.file).catch((err: Error) => {
    throw new ModelLoadError('OS_ERR_MODEL_MISSING', `${p.file}: ${err.message}`)
  })
  if (st.size === 0) throw new ModelLoadError('OS_ERR_MODEL_LOAD', `${p.file}: the file is empty`)
  const key = `${p.name}/${p.version}#${p.generation}`
  let meta: { inputs: ValueMeta[], outputs: ValueMeta[], digest: string }
  try {
    meta = await p.pool.load(key, p.file)
  } catch (err) {
    throw new ModelLoadError('OS_ERR_MODEL_LOAD', `${p.file}: ONNX Runtime cannot load it: ${(err as Error).message}`)
  }
  try {
    const signature = signatureOf({ name: p.name, version: p.version, file: p.file, configFile: p.configFile, meta, config: p.config, labels: p.labels })
    const { inputs, outputs, maxBatchSize } = signature

    const zeros = (rows: number): Record<string, WireTensor> => {
      const feeds: Record<string, WireTensor> = {}
      for (const s of inputs) {
        const dims = s.shape.map((d, i) => (d !== -1 ? d : i === 0 ? rows : 1))
        feeds[s.name] = { type: meta.inputs.find(m => m.name === s.name)?.type as string, dims, data: allocate(s.datatype, elementCount(dims)) }
      }
      return feeds
    }
    const fetches = outputs.map(o => o.name)
    let inline: InlineSession | undefined
    let inlineMaxElements = 0
    let inlineFullBatch = false
    if (p.config.warmup) {
      try {
        await p.pool.run(key, zeros(1), fetches)
        // On an in-process pool the sessions already run on the main thread: no second one.
        if (p.inlineComputeUs > 0 && !p.pool.inProcess) {
          const rows = await inlineRows(async n => {
            // Best of two runs at the smallest shape (the first pays for allocations).
            const a = await p.pool.run(key, zeros(n), fetches)
            const b = await p.pool.run(key, zeros(n), fetches)
            return Math.min(a.computeNs, b.computeNs)
          }, Math.max(1, maxBatchSize), p.inlineComputeUs * 1000)
          if (rows > 0) {
            inline = await InlineSession.create(readModelFile(p.file, meta.digest).bytes, 1)
            await inline.run(zeros(1), fetches)
            inlineMaxElements = Object.values(zeros(rows)).reduce((n, t) => n + t.data.length, 0)
            inlineFullBatch = rows >= Math.max(1, maxBatchSize)
          }
        }
      } catch (err) {
        await inline?.release()
        throw new ModelLoadError('OS_ERR_MODEL_LOAD', `${p.file}: warm-up inference failed: ${(err as Error).message}`)
      }
    }

    const batcher = new Batcher(p.pool, {
      model: p.name,
      key,
      maxBatchSize,
      maxQueueDelayMicros: p.config.maxQueueDelayMicros,
      maxQueueSize: p.config.maxQueueSize,
      onBatch: p.onBatch,
      ...(inline !== undefined ? { inline: { session: inline, maxElements: inlineMaxElements, fullBatch: inlineFullBatch } } : {})
    })
    return {
      ...signature,
      key,
      file: p.file,
      fingerprint: p.fingerprint,
      settingsFingerprint: p.settingsFingerprint,
      batcher,
      inline,
      inlineMaxElements
    }
  } catch (err) {
    await p.pool.unload(key)
    throw err
  }
}

/** Stops routing to a version: waits for its queued and running requests, then frees its sessions. */
export async function unloadModelVersion (pool: WorkerPool, mv: ModelVersion): Promise<void> {
  await mv.batcher.drain()
  mv.batcher.close()
  await mv.inline?.release()
  await pool.unload(mv.key)
}
