/**
 * A pool slot that is not a thread: it runs its SessionHost on the main thread
 * (`--inference-thread main`, serve-options.ts): no V8 isolate for a worker (~10 MiB of
 * idle RSS) and no thread wake-ups per batch; health and metrics still answer from their
 * own thread (http/metrics-worker.ts). Not the default: on 1 CPU a saturated heavy model
 * delayed health probes to p99 ~105 ms (6.9 ms with a worker) and halved throughput.
 *
 * It speaks the worker's message protocol through the same events (`message`, `exit`),
 * so the pool treats it as one more slot: answers arrive asynchronously, `exit` ends it
 * (its sessions are released), and a replacement loads every model again.
 */
import { EventEmitter } from 'node:events'
import type { Worker } from 'node:worker_threads'
import { SessionHost } from './session-host.js'
import type { WorkerRequest, WorkerResponse } from './protocol.js'

export class MainThreadSlot extends EventEmitter {
  #host: SessionHost | undefined = new SessionHost()
  /** Requests being handled; `exit` waits for them, as a thread exits between runs. */
  #busy = Promise.resolve()

  postMessage (msg: WorkerRequest): void {
    const host = this.#host
    if (host === undefined || msg.op === 'trim') return // the pool trims the main thread itself
    if (msg.op === 'exit') {
      this.#host = undefined
      void this.#busy.then(async () => await host.releaseAll()).finally(() => this.emit('exit', msg.code))
      return
    }
    const done = host.handle(msg).then(({ res }) => res, (err: unknown): WorkerResponse => ({ id: msg.id, ok: false, error: (err as Error).message ?? String(err) }))
    this.#busy = this.#busy.then(async () => { await done.catch(() => {}) })
    void done.then(res => { if (this.#host !== undefined) this.emit('message', res) })
  }

  async terminate (): Promise<number> {
    this.postMessage({ op: 'exit', code: 1 })
    return 1
  }

  /** As a Worker, for the pool's slot. */
  asWorker (): Worker {
    return this as unknown as Worker
  }
}
