/**
 * What every ONNX Runtime session of the sidecar shares, whichever thread holds it (an
 * inference worker through session-host.ts, or the main thread's inline-session.ts): the
 * session options, and the marshalling of tensors between the pool's wire form and ORT's.
 */
import ort from 'onnxruntime-node'
import type { RunResult, WireTensor } from './protocol.js'

/**
 * Session options, chosen by measurement (issue 13): the CPU memory arena and memory
 * pattern stay on; turning them off saved no idle RSS (5.3M-parameter MLP, one session:
 * +47.9 MiB with both on, +55.5 with both off, +57.3 with the arena off) and slowed batches.
 */
export function sessionOptions (threads: number): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    enableMemPattern: true
  }
}

/**
 * Runs `session` on wire tensors; the outputs come back as wire tensors with the compute time.
 *
 * `now`: compute inside this call rather than on the next turn of the event loop.
 * onnxruntime-node's `run()` defers its synchronous native call with `setImmediate`; an
 * inference worker that has taken a job off its doorbell (doorbell.ts), or an inline
 * session whose batch the batcher cut in its own `setImmediate` (inline-session.ts), would
 * pay a whole event-loop iteration for that, so for the length of the call `setImmediate`
 * runs its callback at once. The result still arrives through the promise (a microtask). Should a
 * later onnxruntime-node stop deferring, this changes nothing.
 */
export async function runSession (session: ort.InferenceSession, feeds: Record<string, WireTensor>, fetches: string[], now = false): Promise<RunResult> {
  const input: Record<string, ort.Tensor> = {}
  for (const [name, t] of Object.entries(feeds)) input[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims)
  const started = process.hrtime.bigint()
  const result = await (now ? runNow(session, input, fetches) : session.run(input, fetches))
  const computeNs = Number(process.hrtime.bigint() - started)
  const outputs: Record<string, WireTensor> = {}
  for (const [name, value] of Object.entries(result)) outputs[name] = { type: value.type, dims: [...value.dims], data: value.data as WireTensor['data'] }
  return { outputs, computeNs }
}

function runNow (session: ort.InferenceSession, input: Record<string, ort.Tensor>, fetches: string[]): Promise<ort.InferenceSession.OnnxValueMapType> {
  const deferred = globalThis.setImmediate
  globalThis.setImmediate = immediately as typeof setImmediate
  try {
    return session.run(input, fetches)
  } finally {
    globalThis.setImmediate = deferred
  }
}

function immediately (callback: (...args: unknown[]) => void, ...args: unknown[]): void {
  callback(...args)
}

/** The buffers of `tensors` that can be transferred to another thread rather than copied. */
export function transferables (tensors: Record<string, WireTensor>): ArrayBuffer[] {
  const out: ArrayBuffer[] = []
  for (const t of Object.values(tensors)) {
    if (!Array.isArray(t.data) && t.data.buffer instanceof ArrayBuffer) out.push(t.data.buffer)
  }
  return out
}
