/**
 * Runs inside a worker thread: a SessionHost (session-host.ts) whose `session.run`, which
 * is synchronous native work, then leaves the main thread free to serve HTTP, health
 * checks and metrics while a model computes. Output buffers are transferred, not copied.
 *   exit {op, code} -> the thread ends (after the run in progress, if any)
 *   trim {op}       -> what the main thread collects after a burst (gc.ts, BurstCollector): the new
 *                      space a burst grew, and the old space when it grew too (no answer)
 * Once it holds no job, the worker parks on its doorbell (doorbell.ts) for the next one.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { BurstCollector } from './gc.js'
import { Doorbell } from './doorbell.js'
import { SessionHost } from './session-host.js'
import type { WorkerRequest, WorkerResponse } from './protocol.js'

if (parentPort === null) throw new Error('inference-worker must run in a worker thread')
const port = parentPort
const host = new SessionHost({ runNow: true })
const collector = new BurstCollector()
const bellBuffer = (workerData as { bell?: unknown } | null)?.bell
const bell = bellBuffer instanceof SharedArrayBuffer ? new Doorbell(bellBuffer) : undefined
let inFlight = 0
const idle = (): boolean => inFlight === 0

function onMessage (msg: WorkerRequest): void {
  if (msg.op === 'exit') process.exit(msg.code)
  if (msg.op === 'trim') return void collector.collect()
  inFlight++
  host.handle(msg).then(({ res, transfer }) => {
    port.postMessage(res, transfer)
  }, (err: unknown) => {
    port.postMessage({ id: msg.id, ok: false, error: (err as Error).message ?? String(err) } satisfies WorkerResponse)
  }).finally(() => {
    inFlight--
    if (inFlight === 0) bell?.park(port, m => { onMessage(m as WorkerRequest) }, idle)
  })
}

port.on('message', onMessage)
