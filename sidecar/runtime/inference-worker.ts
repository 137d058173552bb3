/**
 * Runs inside a worker thread: a SessionHost (session-host.ts) whose `session.run`, which
 * is synchronous native work, then leaves the main thread free to serve HTTP, health
 * checks and metrics while a model computes. Output buffers are transferred, not copied.
 * Run jobs come through the job ring once the pool attaches one (ring-server.ts), or as
 * messages (jobs that do not fit the ring, and pools without one).
 *   exit {op, code} -> the thread ends (after the run in progress, if any)
 */
import { parentPort } from 'node:worker_threads'
import { SessionHost } from './session-host.js'
import { JobRing } from './job-ring.js'
import { RingServer } from './ring-server.js'
import { transferables } from './ort-session.js'
import type { WireTensor, WorkerRequest, WorkerResponse } from './protocol.js'

const port = parentPort
if (port === null) throw new Error('inference-worker must run in a worker thread')
const host = new SessionHost()
let attached = false

port.on('message', (msg: WorkerRequest) => {
  if (msg.op === 'exit') process.exit(msg.code)
  if (msg.op === 'attach-ring') {
    if (!attached) {
      attached = true
      const server = new RingServer(new JobRing(msg.buffer), {
        run: async job => await host.run(job.key, ownCopies(job.feeds), job.fetches),
        post: (id, { outputs, computeNs }) => port.postMessage({ id, ok: true, kind: 'run', outputs, computeNs } satisfies WorkerResponse, transferables(outputs)),
        spinNs: msg.spinNs
      })
      void server.serve()
    }
    port.postMessage({ id: msg.id, ok: true, kind: 'ring-attached' } satisfies WorkerResponse)
    return
  }
  host.handle(msg).then(({ res, transfer }) => {
    port.postMessage(res, transfer)
  }, (err: unknown) => {
    port.postMessage({ id: msg.id, ok: false, error: (err as Error).message ?? String(err) } satisfies WorkerResponse)
  })
})

/**
 * The inputs out of shared memory into buffers of their own: onnxruntime-node 1.30 rejects
 * a tensor whose data lies in a SharedArrayBuffer ("Invalid argument": N-API reads
 * typed arrays through napi_get_arraybuffer_info, which takes plain ArrayBuffers only).
 */
function ownCopies (feeds: Record<string, WireTensor>): Record<string, WireTensor> {
  const out: Record<string, WireTensor> = {}
  for (const [name, t] of Object.entries(feeds)) out[name] = { type: t.type, dims: t.dims, data: t.data.slice() }
  return out
}
