/**
 * A fixed pool of inference worker threads. Every worker holds a session for every
 * loaded model version, so any worker can run any batch; a batch goes to the worker
 * with the fewest jobs in flight. A worker that dies is replaced and its sessions are
 * reloaded; the jobs it held fail with an error instead of hanging.
 */
import { EventEmitter } from 'node:events'
import { Worker } from 'node:worker_threads'
import { workerScript } from '../../common/worker-script.js'
import assert from 'node:assert/strict'
import type { Logger } from '../../common/logger.js'
import type { ValueMeta, WireTensor, WorkerRequest, WorkerResponse } from './protocol.js'

/** Jobs a worker may hold at once: one computing, one queued so it never idles between batches. */
const MAX_IN_FLIGHT = 2

type Pending = { resolve: (r: WorkerResponse & { ok: true }) => void, reject: (e: Error) => void }

interface Slot {
  worker: Worker
  inFlight: number
  pending: Map<number, Pending>
}

export interface RunResult {
  outputs: Record<string, WireTensor>
  computeNs: number
}

export class WorkerError extends Error {
  override name = 'WorkerError'
}

const workerUrl = workerScript(import.meta.url, 'inference-worker')

export class WorkerPool extends EventEmitter {
  readonly size: number
  readonly threads: number
  #slots: Slot[] = []
  #models = new Map<string, SharedArrayBuffer>()
  #nextId = 1
  #closed = false
  #backoffMs = 0
  #log: Logger

  constructor (opts: { workers: number, threads: number, logger: Logger }) {
    super()
    assert(opts.workers >= 1 && opts.threads >= 1)
    this.setMaxListeners(0) // one 'capacity' listener per loaded model version
    this.size = opts.workers
    this.threads = opts.threads
    this.#log = opts.logger
    for (let i = 0; i < opts.workers; i++) this.#slots.push(this.#spawn(i))
  }

  #spawn (index: number): Slot {
    const worker = new Worker(workerUrl, { name: `inference-${index}` })
    const bornAt = Date.now()
    const slot: Slot = { worker, inFlight: 0, pending: new Map() }
    worker.on('message', (res: WorkerResponse) => {
      const p = slot.pending.get(res.id)
      if (p === undefined) return
      slot.pending.delete(res.id)
      if (res.ok) p.resolve(res)
      else p.reject(new WorkerError(res.error))
    })
    let dead = false
    const onDeath = (err: Error): void => {
      if (this.#closed || dead) return
      dead = true
      for (const p of slot.pending.values()) p.reject(new WorkerError(`inference worker died: ${err.message}`))
      slot.pending.clear()
      // A worker that dies right after starting would die again at once: back off.
      this.#backoffMs = Date.now() - bornAt < 5000 ? Math.min(Math.max(this.#backoffMs * 2, 100), 10_000) : 0
      this.#log.error({ err, worker: index, restartInMs: this.#backoffMs }, 'inference worker died; replacing it')
      slot.inFlight = MAX_IN_FLIGHT // takes no work until replaced
      const timer = setTimeout(() => this.#replace(index), this.#backoffMs)
      timer.unref()
    }
    worker.on('error', onDeath)
    worker.on('exit', code => onDeath(new Error(`exited with code ${code}`)))
    return slot
  }

  #replace (index: number): void {
    if (this.#closed) return
    const replacement = this.#spawn(index)
    this.#slots[index] = replacement
    // Takes no work until every loaded model is back in it.
    replacement.inFlight = MAX_IN_FLIGHT
    const reloads = [...this.#models].map(async ([key, bytes]) => {
      await this.#send(replacement, { op: 'load', id: 0, key, bytes, threads: this.threads }).catch((e: Error) => {
        this.#log.error({ err: e, key }, 'reloading a model into a replacement worker failed')
      })
    })
    Promise.all(reloads).then(() => {
      if (this.#slots[index] !== replacement) return
      replacement.inFlight = 0
      this.emit('capacity')
    }, () => {})
  }

  #send (slot: Slot, msg: WorkerRequest): Promise<WorkerResponse & { ok: true }> {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject })
      slot.worker.postMessage({ ...msg, id })
    })
  }

  /** Loads a model version into every worker; returns the session's input and output metadata. */
  async load (key: string, bytes: Uint8Array): Promise<{ inputs: ValueMeta[], outputs: ValueMeta[] }> {
    const shared = new SharedArrayBuffer(bytes.byteLength)
    new Uint8Array(shared).set(bytes)
    const results = await Promise.allSettled(this.#slots.map(slot => this.#send(slot, { op: 'load', id: 0, key, bytes: shared, threads: this.threads })))
    const failed = results.find(r => r.status === 'rejected')
    if (failed !== undefined) {
      await this.#unloadEverywhere(key)
      throw (failed as PromiseRejectedResult).reason
    }
    this.#models.set(key, shared)
    const first = (results[0] as PromiseFulfilledResult<WorkerResponse & { ok: true }>).value
    assert(first.kind === 'load')
    return { inputs: first.inputs, outputs: first.outputs }
  }

  async unload (key: string): Promise<void> {
    this.#models.delete(key)
    await this.#unloadEverywhere(key)
  }

  async #unloadEverywhere (key: string): Promise<void> {
    await Promise.allSettled(this.#slots.map(slot => this.#send(slot, { op: 'unload', id: 0, key })))
  }

  /** True when some worker can take another batch right now. */
  hasCapacity (): boolean {
    return this.#slots.some(s => s.inFlight < MAX_IN_FLIGHT)
  }

  async run (key: string, feeds: Record<string, WireTensor>, fetches: string[]): Promise<RunResult> {
    let slot = this.#slots[0] as Slot
    for (const s of this.#slots) if (s.inFlight < slot.inFlight) slot = s
    slot.inFlight++
    const transfer: ArrayBuffer[] = []
    for (const t of Object.values(feeds)) {
      if (!Array.isArray(t.data) && t.data.buffer instanceof ArrayBuffer && t.data.byteLength === t.data.buffer.byteLength) transfer.push(t.data.buffer)
    }
    const id = this.#nextId++
    try {
      const res = await new Promise<WorkerResponse & { ok: true }>((resolve, reject) => {
        slot.pending.set(id, { resolve, reject })
        slot.worker.postMessage({ op: 'run', id, key, feeds, fetches } satisfies WorkerRequest, transfer)
      })
      assert(res.kind === 'run')
      return { outputs: res.outputs, computeNs: res.computeNs }
    } finally {
      slot.inFlight--
      this.emit('capacity')
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    await Promise.all(this.#slots.map(async s => await s.worker.terminate()))
  }
}
