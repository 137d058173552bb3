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
import { collectAll } from './gc.js'
import { readModelFile } from './model-file.js'
import { runSession, sessionOptions, transferables } from './ort-session.js'
import type { WorkerRequest, WorkerResponse, ValueMeta } from './protocol.js'

function meta (list: readonly ort.InferenceSession.ValueMetadata[]): ValueMeta[] {
  return list.map(m => m.isTensor
    ? { name: m.name, type: m.type, shape: m.shape.map(d => (typeof d === 'number' && d >= 0 ? d : -1)) }
    : { name: m.name, type: 'non-tensor', shape: [] })
}

export class SessionHost {
  #sessions = new Map<string, ort.InferenceSession>()
  readonly #runNow: boolean

  /** `runNow`: compute inside `handle` (ort-session.ts), as an inference worker does. */
  constructor (opts: { runNow?: boolean } = {}) {
    this.#runNow = opts.runNow === true
  }

  async handle (msg: Exclude<WorkerRequest, { op: 'exit' | 'trim' }>): Promise<{ res: WorkerResponse, transfer: ArrayBuffer[] }> {
    switch (msg.op) {
      case 'load': {
        let read: { bytes: Uint8Array, digest: string } | undefined = readModelFile(msg.file, msg.digest)
        const digest = read.digest
        const session = await ort.InferenceSession.create(read.bytes, sessionOptions(msg.threads))
        read = undefined
        // The file's bytes (as large as the weights) are garbage now, but an idle sidecar
        // would keep them until some later allocation triggers a collection: free them now.
        collectAll()
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
        const { outputs, computeNs } = await runSession(session, msg.feeds, msg.fetches, this.#runNow)
        return { res: { id: msg.id, ok: true, kind: 'run', outputs, computeNs }, transfer: transferables(outputs) }
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
