/**
 * Loading one model version: read the file, create a session in every worker, turn the
 * session's metadata into OIP tensor specs, check config.yaml against it, warm it up,
 * and hand back a `ModelVersion` ready to take requests.
 */
import { stat } from 'node:fs/promises'
import { ModelLoadError } from '../core/errors.js'
import { allocate, elementCount, oipFromOrt, type OipDatatype } from '../core/datatypes.js'
import { DEFAULT_MAX_BATCH_SIZE, type ModelConfig, type Normalizer } from './config-types.js'
import { Batcher } from '../runtime/batcher.js'
import type { WireTensor, ValueMeta } from '../runtime/protocol.js'
import type { WorkerPool } from '../runtime/worker-pool.js'
import { InlineSession } from '../runtime/inline-session.js'
import { readModelFile } from '../runtime/model-file.js'

export interface TensorSpec {
  name: string
  datatype: OipDatatype
  /** -1 marks a dynamic dimension. */
  shape: number[]
}

export interface ModelVersion {
  name: string
  version: number
  key: string
  file: string
  fingerprint: string
  settingsFingerprint: string
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  inputByName: Map<string, TensorSpec>
  outputByName: Map<string, TensorSpec>
  /** 0: no batching; requests carry whole tensors. */
  maxBatchSize: number
  preprocess: Map<string, Normalizer>
  labels: string[] | undefined
  batcher: Batcher
  /** Set when the model is small enough to run on the main thread (see runtime/inline-session.ts). */
  inline: InlineSession | undefined
  /** Batches with at most this many input elements run inline (what the warm-up measured within the budget); 0 without `inline`. */
  inlineMaxElements: number
}

function specs (list: ValueMeta[], kind: 'input' | 'output', file: string): TensorSpec[] {
  const out: TensorSpec[] = []
  for (const m of list) {
    const datatype = oipFromOrt(m.type)
    if (datatype === undefined) {
      // Outputs such as scikit-learn's ZipMap (a sequence of maps) cannot travel over OIP; inputs must.
      if (kind === 'output') continue
      throw new ModelLoadError('OS_ERR_MODEL_LOAD', `${file}: input '${m.name}' has type '${m.type}', which the Open Inference Protocol cannot carry`)
    }
    out.push({ name: m.name, datatype, shape: m.shape })
  }
  if (out.length === 0) throw new ModelLoadError('OS_ERR_MODEL_LOAD', `${file}: the model has no ${kind} tensors the Open Inference Protocol can carry`)
  return out
}

function checkPreprocess (preprocess: Map<string, Normalizer>, inputs: Map<string, TensorSpec>, configFile: string): void {
  for (const [name, norm] of preprocess) {
    const where = `${configFile}: key 'preprocess.${name}'`
    const input = inputs.get(name)
    if (input === undefined) throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${where}: the model has no input '${name}' (inputs: ${[...inputs.keys()].join(', ')})`)
    if (input.datatype !== 'FP32' && input.datatype !== 'FP64') throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${where}: input '${name}' is ${input.datatype}; normalisation needs FP32 or FP64`)
    const features = input.shape[input.shape.length - 1]
    const given = norm.kind === 'minmax' ? norm.min.length : norm.mean.length
    if (features === undefined || features === -1) throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${where}: input '${name}' has no fixed feature dimension to normalise (shape [${input.shape.join(',')}])`)
    if (features !== given) throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${where}: ${given} values given but input '${name}' has ${features} features (shape [${input.shape.join(',')}])`)
  }
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
    const inputs = specs(meta.inputs, 'input', p.file)
    const outputs = specs(meta.outputs, 'output', p.file)
    const inputByName = new Map(inputs.map(s => [s.name, s]))
    checkPreprocess(p.config.preprocess, inputByName, p.configFile)

    const batchable = [...inputs, ...outputs].every(s => s.shape.length >= 1 && s.shape[0] === -1)
    let maxBatchSize = p.config.maxBatchSize ?? (batchable ? DEFAULT_MAX_BATCH_SIZE : 0)
    if (maxBatchSize > 0 && !batchable) {
      const fixed = [...inputs, ...outputs].find(s => s.shape.length === 0 || s.shape[0] !== -1) as TensorSpec
      throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${p.configFile}: key 'max_batch_size' is ${maxBatchSize} but '${fixed.name}' has shape [${fixed.shape.join(',')}] with no dynamic first (batch) dimension; set max_batch_size: 0`)
    }
    if (!batchable) maxBatchSize = 0

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
    if (p.config.warmup) {
      try {
        await p.pool.run(key, zeros(1), fetches)
        // On an in-process pool the sessions already run on the main thread: no second one.
        if (p.inlineComputeUs > 0 && !p.pool.inProcess) {
          // A full batch at the smallest shape; best of two runs (the first pays for allocations).
          // Only batches no larger than this run inline: nothing is extrapolated, as an op's
          // cost may grow faster than its input (attention is quadratic in sequence length).
          const rows = Math.max(1, maxBatchSize)
          const elements = Object.values(zeros(rows)).reduce((n, t) => n + t.data.length, 0)
          const a = await p.pool.run(key, zeros(rows), fetches)
          const b = await p.pool.run(key, zeros(rows), fetches)
          if (Math.min(a.computeNs, b.computeNs) <= p.inlineComputeUs * 1000) {
            inline = await InlineSession.create(readModelFile(p.file, meta.digest).bytes, 1)
            await inline.run(zeros(1), fetches)
            inlineMaxElements = elements
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
      ...(inline !== undefined ? { inline: { session: inline, maxElements: inlineMaxElements } } : {})
    })
    return {
      name: p.name,
      version: p.version,
      key,
      file: p.file,
      fingerprint: p.fingerprint,
      settingsFingerprint: p.settingsFingerprint,
      inputs,
      outputs,
      inputByName,
      outputByName: new Map(outputs.map(s => [s.name, s])),
      maxBatchSize,
      preprocess: p.config.preprocess,
      labels: p.labels,
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
