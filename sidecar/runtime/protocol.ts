/** Messages between the main thread and inference workers. */
import type { WireTensor } from '../core/tensor.js'

export type { WireTensor }

/** What one run of a session gives back. */
export interface RunResult {
  outputs: Record<string, WireTensor>
  computeNs: number
}

export interface ValueMeta {
  name: string
  /** ONNX Runtime type, or `non-tensor` for sequences and maps. */
  type: string
  /** -1 marks a dynamic or symbolic dimension. */
  shape: number[]
}

export type WorkerRequest =
  /** The host reads `file` itself; `digest` (sha256, hex), when given, must match its content. */
  | { op: 'load', id: number, key: string, file: string, digest?: string, threads: number }
  | { op: 'unload', id: number, key: string }
  | { op: 'run', id: number, key: string, feeds: Record<string, WireTensor>, fetches: string[] }
  /** A burst is over: give back what it grew (idle-release.ts); no answer. */
  | { op: 'trim' }
  /** Ends the worker when it reads this (never inside a run, unlike terminate(), which aborts the process then); no answer. */
  | { op: 'exit', code: number }

export type WorkerResponse =
  | { id: number, ok: true, kind: 'load', inputs: ValueMeta[], outputs: ValueMeta[], digest: string }
  | { id: number, ok: true, kind: 'run', outputs: Record<string, WireTensor>, computeNs: number }
  | { id: number, ok: true, kind: 'unload' }
  | { id: number, ok: false, error: string }
