/**
 * Holds ONNX Runtime sessions and answers the pool's requests (protocol.ts). It runs in an
 * inference worker thread (inference-worker.ts), or, with `--inference-thread main`, on the main
 * thread itself (worker-pool.ts, `inProcess`): the same code either way.
 *
 *   load   {op, id, key, file, digest?, threads} -> {id, ok, inputs, outputs, digest} | {id, ok:false, error}
 *   run    {op, id, key, feeds, fetches}         -> {id, ok, outputs, computeNs}
 *   unload {op, id, key}                         -> {id, ok}
 *
 * A load reads the file itself (the main thread keeps no copy of the weights) and checks
 * it against `digest` when given (a replacement worker loading a version again).
 */
import ort from 'onnxruntime-node'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { readModelFile } from './model-file.js'
import type { WorkerRequest, WorkerResponse, WireTensor, ValueMeta } from './protocol.js'

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

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
setFlagsFromString('--no-expose-gc')

function meta (list: readonly ort.InferenceSession.ValueMetadata[]): ValueMeta[] {
  return list.map(m => m.isTensor
    ? { name: m.name, type: m.type, shape: m.shape.map(d => (typeof d === 'number' && d >= 0 ? d : -1)) }
    : { name: m.name, type: 'non-tensor', shape: [] })
}

export class SessionHost {
  #sessions = new Map<string, ort.InferenceSession>()

  async handle (msg: Exclude<WorkerRequest, { op: 'exit' }>): Promise<{ res: WorkerResponse, transfer: ArrayBuffer[] }> {
    switch (msg.op) {
      case 'load': {
        let read: { bytes: Uint8Array, digest: string } | undefined = readModelFile(msg.file, msg.digest)
        const digest = read.digest
        const session = await ort.InferenceSession.create(read.bytes, sessionOptions(msg.threads))
        read = undefined
        // The file's bytes (as large as the weights) are garbage now, but an idle sidecar
        // would keep them until some later allocation triggers a collection: free them now.
        gc()
        const old = this.#sessions.get(msg.key)
        this.#sessions.set(msg.key, session)
        if (old !== undefined) await old.release()
        return { res: { id: msg.id, ok: true, kind: 'load', inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata), digest }, transfer: [] }
      }
      case 'unload': {
        const session = this.#sessions.get(msg.key)
        this.#sessions.delete(msg.key)
        if (session !== undefined) await session.release()
        return { res: { id: msg.id, ok: true, kind: 'unload' }, transfer: [] }
      }
      case 'run': {
        const session = this.#sessions.get(msg.key)
        if (session === undefined) return { res: { id: msg.id, ok: false, error: `model ${msg.key} is not loaded in this worker` }, transfer: [] }
        const feeds: Record<string, ort.Tensor> = {}
        for (const [name, t] of Object.entries(msg.feeds)) {
          feeds[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims)
        }
        const started = process.hrtime.bigint()
        const result = await session.run(feeds, msg.fetches)
        const computeNs = Number(process.hrtime.bigint() - started)
        const outputs: Record<string, WireTensor> = {}
        const transfer: ArrayBuffer[] = []
        for (const [name, value] of Object.entries(result)) {
          const data = value.data as WireTensor['data']
          outputs[name] = { type: value.type, dims: [...value.dims], data }
          if (!Array.isArray(data) && data.buffer instanceof ArrayBuffer) transfer.push(data.buffer)
        }
        return { res: { id: msg.id, ok: true, kind: 'run', outputs, computeNs }, transfer }
      }
    }
  }

  /** Releases every session (an in-process host that is closed or "killed"). */
  async releaseAll (): Promise<void> {
    const all = [...this.#sessions.values()]
    this.#sessions.clear()
    await Promise.allSettled(all.map(async s => await s.release()))
  }
}
