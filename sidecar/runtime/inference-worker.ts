/**
 * Runs inside a worker thread: a SessionHost (session-host.ts) whose `session.run`, which
 * is synchronous native work, then leaves the main thread free to serve HTTP, health
 * checks and metrics while a model computes. Output buffers are transferred, not copied.
 *   exit {op, code} -> the thread ends (after the run in progress, if any)
 *   trim {op}       -> a young-generation collection, so V8 shrinks the new space a burst grew (no answer)
 */
import { parentPort } from 'node:worker_threads'
import { collectYoung } from './gc.js'
import { SessionHost } from './session-host.js'
import type { WorkerRequest, WorkerResponse } from './protocol.js'

const port = parentPort
if (port === null) throw new Error('inference-worker must run in a worker thread')
const host = new SessionHost()

port.on('message', (msg: WorkerRequest) => {
  if (msg.op === 'exit') process.exit(msg.code)
  if (msg.op === 'trim') return collectYoung()
  host.handle(msg).then(({ res, transfer }) => {
    port.postMessage(res, transfer)
  }, (err: unknown) => {
    port.postMessage({ id: msg.id, ok: false, error: (err as Error).message ?? String(err) } satisfies WorkerResponse)
  })
})
