/** Bodies of the metadata and health endpoints (Open Inference Protocol shapes). */
import type { ModelManager } from '../models/model-manager.js'

const EXTENSIONS = ['binary_tensor_data', 'classification', 'model_repository', 'system_shared_memory']

export function serverMetadata (version: string): object {
  return { name: 'onnx-sidecar', version, extensions: EXTENSIONS }
}

export function modelMetadata (manager: ModelManager, model: string, version: string | undefined): object {
  const mv = manager.resolve(model, version)
  const versions = manager.index().filter(e => e.name === model && e.state === 'READY').map(e => e.version)
  return {
    name: mv.name,
    versions,
    platform: 'onnxruntime_onnx',
    inputs: mv.inputs.map(i => ({ name: i.name, datatype: i.datatype, shape: i.shape })),
    outputs: mv.outputs.map(o => ({ name: o.name, datatype: o.datatype, shape: o.shape })),
    parameters: { max_batch_size: mv.maxBatchSize, version: String(mv.version) }
  }
}

/**
 * Whether a model (version) serves now (its state is READY): false while it is loading,
 * missing or broken; throws 404 for a model or version the sidecar does not have and 400
 * for a bad version.
 */
export function modelReady (manager: Pick<ModelManager, 'state'>, model: string, version: string | undefined): boolean {
  const status = manager.state(model, version)
  if (status.state === 'UNKNOWN') throw status.error
  return status.state === 'READY'
}

/** What the sidecar's readiness is made of; the same on REST, gRPC and the metrics port. */
export interface ReadinessFacts {
  isShuttingDown: () => boolean
  /** True while the warm-up before ready runs (http/warmup.ts). Undefined: there is none. */
  isWarming?: () => boolean
  manager: Pick<ModelManager, 'ready'>
}

/** Ready: not shutting down, not warming up, and every model ready. */
export function sidecarReady (f: ReadinessFacts): boolean {
  return !f.isShuttingDown() && f.isWarming?.() !== true && f.manager.ready()
}

/**
 * `/v2/health/live` and `/v2/health/ready`, for both the inference port and the metrics
 * listener thread; undefined for any other name. `ready` is only consulted for `ready`.
 */
export function health (which: string, ready: () => boolean): { status: number, body: object } | undefined {
  if (which === 'live') return { status: 200, body: { live: true } }
  if (which === 'ready') {
    const ok = ready()
    return { status: ok ? 200 : 503, body: { ready: ok } }
  }
  return undefined
}
