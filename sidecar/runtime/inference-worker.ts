/**
 * Runs inside a worker thread: owns ONNX Runtime sessions and calls `session.run`,
 * which is synchronous native work, so the main thread keeps serving HTTP, health
 * checks and metrics while a model computes.
 *
 * Protocol (structured clone; output buffers are transferred, not copied):
 *   load   {op, id, key, bytes, threads}  -> {id, ok, inputs, outputs} | {id, ok:false, error}
 *   run    {op, id, key, feeds, fetches}  -> {id, ok, outputs, computeNs}
 *   unload {op, id, key}                  -> {id, ok}
 *   exit   {op, code}                     -> the thread ends (after the run in progress, if any)
 */
import { parentPort } from 'node:worker_threads'
import ort from 'onnxruntime-node'
import type { WorkerRequest, WorkerResponse, WireTensor, ValueMeta } from './protocol.js'

const sessions = new Map<string, ort.InferenceSession>()
const port = parentPort
if (port === null) throw new Error('inference-worker must run in a worker thread')

function meta (list: readonly ort.InferenceSession.ValueMetadata[]): ValueMeta[] {
  return list.map(m => m.isTensor
    ? { name: m.name, type: m.type, shape: m.shape.map(d => (typeof d === 'number' && d >= 0 ? d : -1)) }
    : { name: m.name, type: 'non-tensor', shape: [] })
}

async function handle (msg: Exclude<WorkerRequest, { op: 'exit' }>): Promise<{ res: WorkerResponse, transfer: ArrayBuffer[] }> {
  switch (msg.op) {
    case 'load': {
      // ONNX Runtime wants its own ArrayBuffer, not a view of the pool's shared one.
      const bytes = new Uint8Array(msg.bytes.byteLength)
      bytes.set(new Uint8Array(msg.bytes))
      const session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: msg.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all'
      })
      const old = sessions.get(msg.key)
      sessions.set(msg.key, session)
      if (old !== undefined) await old.release()
      return { res: { id: msg.id, ok: true, kind: 'load', inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata) }, transfer: [] }
    }
    case 'unload': {
      const session = sessions.get(msg.key)
      sessions.delete(msg.key)
      if (session !== undefined) await session.release()
      return { res: { id: msg.id, ok: true, kind: 'unload' }, transfer: [] }
    }
    case 'run': {
      const session = sessions.get(msg.key)
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

port.on('message', (msg: WorkerRequest) => {
  if (msg.op === 'exit') process.exit(msg.code)
  handle(msg).then(({ res, transfer }) => {
    port.postMessage(res, transfer)
  }, (err: unknown) => {
    port.postMessage({ id: msg.id, ok: false, error: (err as Error).message ?? String(err) } satisfies WorkerResponse)
  })
})
