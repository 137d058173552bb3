/**
 * A fixed pool of inference worker threads. Every worker holds a session for every
 * loaded model version, so any worker can run any batch; a batch goes to the ready
 * worker with the fewest jobs in flight.
 *
 * Each slot has an explicit state:
 *   starting  a replacement is loading every model the pool serves; it takes no batches
 *   ready     takes batches (for the models whose load succeeded in it)
 *   dead      exited or crashed; nothing is sent to it, and it is replaced after a back-off
 * When a worker dies, every job it held fails at once with a `WorkerUnavailableError`
 * (the batcher answers 503 + Retry-After). A model that fails to load in a replacement
 * is logged and reported with a 'reload-failed' event; that worker never runs it, and
 * when no running worker holds a model, `run()` rejects at once instead of hanging.
 */
import { EventEmitter, once } from 'node:events'
import { Worker } from 'node:worker_threads'
import { workerScript } from '../../common/worker-script.js'
import { MainThreadSlot } from './main-thread-slot.js'
import { Doorbell } from './doorbell.js'
import { BurstCollector } from './gc.js'
import { IdleRelease, noteBatch } from './idle-release.js'
import assert from 'node:assert/strict'
import type { Logger } from '../../common/logger.js'
import type { RunResult, ValueMeta, WireTensor, WorkerRequest, WorkerResponse } from './protocol.js'

/** Jobs a worker may hold at once: one computing, one queued so it never idles between batches. */
const MAX_IN_FLIGHT = 2
/** On the main thread (`inProcess`) one at a time: the next batch collects meanwhile. */
const MAX_IN_FLIGHT_IN_PROCESS = 1
/**
 * close() waits this long for a worker to finish the run in progress and exit before
 * terminating it. Terminating a thread inside a native ONNX Runtime run aborts the whole
 * process, so this is generous: one warm-up batch of a heavy model takes seconds on a
 * small CPU limit, and the kubelet's SIGKILL (terminationGracePeriodSeconds, 30 s by
 * default) ends a run that is really stuck first.
 */
const EXIT_GRACE_MS = 60_000 // 60 seconds
/** A worker that dies within 5 seconds of starting is replaced after a back-off that doubles from 0.1 s up to 10 s. */
const EARLY_DEATH_MS = 5000
const MIN_BACKOFF_MS = 100
const MAX_BACKOFF_MS = 10_000

type Ok = WorkerResponse & { ok: true }
type Pending = { resolve: (r: Ok) => void, reject: (e: Error) => void }
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
/** A request before the pool numbers it. */
type Request = DistributiveOmit<WorkerRequest, 'id'>
type SessionMeta = { inputs: ValueMeta[], outputs: ValueMeta[], /** sha256 of the model file as loaded. */ digest: string }

export type SlotState = 'starting' | 'ready' | 'dead'

interface Slot {
  index: number
  worker: Worker
  state: SlotState
  inFlight: number
  pending: Map<number, Pending>
  /** Loads sent to this worker, by model key (settled: loaded or failed). */
  loads: Map<string, Promise<SessionMeta>>
  /** Model keys whose session is loaded in this worker. */
  loaded: Set<string>
  /** Rung after every message, so a parked worker wakes at once (doorbell.ts). */
  bell: Doorbell
}

export type { RunResult }

/** ONNX Runtime (in a worker) failed: a bad model or bad input. */
class WorkerError extends Error {
  override name = 'WorkerError'
}

/** No worker could run the job, or the one running it died: try again later. */
export class WorkerUnavailableError extends WorkerError {
  override name = 'WorkerUnavailableError'
}

export interface WorkerPoolOptions {
  workers: number
  /** intra-op threads per session. */
  threads: number
  logger: Logger
  /**
   * Starts the worker for a slot, given the buffer of its doorbell; tests substitute
   * faulty ones. Default: runtime/inference-worker.
   */
  createWorker?: (index: number, bell: SharedArrayBuffer) => Worker
  /**
   * Run the sessions on the main thread (runtime/main-thread-slot.ts) instead of worker
   * threads: one slot, one batch at a time (`--inference-thread main`).
   */
  inProcess?: boolean
  /**
   * Once no batch has run for this many ms after some did, collect the young generation in
   * the main thread and every worker, so V8 gives back the new space a burst grew
   * (idle-release.ts, `--idle-release-ms`); 0 or absent: never.
   */
  idleReleaseMs?: number
}

const workerUrl = workerScript(import.meta.url, 'inference-worker')

export class WorkerPool extends EventEmitter {
  readonly size: number
  readonly #threads: number
  #slots: Slot[] = []
  readonly inProcess: boolean
  /**
   * Every model the pool serves (or is loading), by key: replacements load all of them,
   * reading the file again (no copy of the weights is kept here) and checking its digest.
   */
  #models = new Map<string, { file: string, digest?: string }>()
  #maxInFlight: number
  #nextId = 1
  #closed = false
  #backoffMs = 0
  /** Pending replacements (back-off timers). */
  #restarts = new Set<NodeJS.Timeout>()
  #log: Logger
  #createWorker: (index: number, bell: SharedArrayBuffer) => Worker
  #idle: IdleRelease | undefined
  #collector = new BurstCollector()

  constructor (opts: WorkerPoolOptions) {
    super()
    assert(opts.workers >= 1 && opts.threads >= 1)
    this.setMaxListeners(0) // one 'capacity' listener per loaded model version
    this.inProcess = opts.inProcess === true
    this.size = this.inProcess ? 1 : opts.workers
    this.#threads = opts.threads
    this.#maxInFlight = this.inProcess ? MAX_IN_FLIGHT_IN_PROCESS : MAX_IN_FLIGHT
    this.#log = opts.logger
    this.#createWorker = opts.createWorker ?? (this.inProcess
      ? () => new MainThreadSlot().asWorker()
      : (index, bell) => new Worker(workerUrl, { name: `inference-${index}`, workerData: { bell } }))
    // Nothing is loaded yet, so the first workers are ready at once (messages queue until they boot).
    for (let i = 0; i < this.size; i++) this.#slots.push(this.#spawn(i, 'ready'))
    if (opts.idleReleaseMs !== undefined && opts.idleReleaseMs > 0) this.#idle = new IdleRelease(opts.idleReleaseMs, () => { this.releaseIdleMemory() })
  }

  /**
   * Collects the young generation here (and the old space when a burst grew it: gc.ts,
   * BurstCollector) and in every running worker (what the idle release does after a burst).
   */
  releaseIdleMemory (): void {
    this.#collector.collect()
    if (this.inProcess) return
    for (const s of this.#live()) this.#post(s, { op: 'trim' })
  }

  /** Each slot's state, by index (metrics, tests). */
  get states (): SlotState[] {
    return this.#slots.map(s => s.state)
  }

  #spawn (index: number, state: SlotState): Slot {
    const bell = new Doorbell()
    const worker = this.#createWorker(index, bell.buffer)
    const bornAt = Date.now()
    const slot: Slot = { index, worker, state, inFlight: 0, pending: new Map(), loads: new Map(), loaded: new Set(), bell }
    worker.on('message', (res: WorkerResponse) => {
      const p = slot.pending.get(res.id)
      if (p === undefined) return
      slot.pending.delete(res.id)
      if (res.ok) p.resolve(res)
      else p.reject(new WorkerError(res.error))
    })
    const onDeath = (err: Error): void => {
      if (slot.state === 'dead') return
      slot.state = 'dead'
      const pending = [...slot.pending.values()]
      slot.pending.clear()
      for (const p of pending) p.reject(new WorkerUnavailableError(`inference worker ${index} died: ${err.message}`))
      if (this.#closed) return
      // A worker that dies right after starting would die again at once: back off.
      this.#backoffMs = Date.now() - bornAt < EARLY_DEATH_MS ? Math.min(Math.max(this.#backoffMs * 2, MIN_BACKOFF_MS), MAX_BACKOFF_MS) : 0
      this.#log.error({ err, worker: index, failedJobs: pending.length, restartInMs: this.#backoffMs }, 'inference worker died; replacing it')
      // Not unref'd: like the worker it replaces, it keeps the process alive; close() clears it.
      const timer = setTimeout(() => {
        this.#restarts.delete(timer)
        this.#replace(index)
      }, this.#backoffMs)
      this.#restarts.add(timer)
    }
    worker.on('error', onDeath)
    worker.on('exit', code => onDeath(new Error(`exited with code ${code}`)))
    return slot
  }

  #replace (index: number): void {
    if (this.#closed) return
    const slot = this.#spawn(index, 'starting')
    this.#slots[index] = slot
    this.emit('spawn')
    this.#warm(slot).catch((err: Error) => this.#log.error({ err, worker: index }, 'warming a replacement worker failed'))
  }

  /** Loads every served model into a replacement, then lets it take work. */
  async #warm (slot: Slot): Promise<void> {
    for (;;) {
      // Models loaded while this runs are picked up by the next round.
      const keys = [...this.#models.keys()]
      const rounds = keys.map(async key => {
        try {
          await this.#loadInto(slot, key)
        } catch (err) {
          if (slot.state === 'dead' || !this.#models.has(key)) return
          this.#log.error({ err, worker: slot.index, key }, 'a model failed to load into a replacement worker; that worker will not run it')
          this.emit('reload-failed', key, (err as Error).message)
        }
      })
      await Promise.all(rounds)
      if (slot.state !== 'starting') return
      if ([...this.#models.keys()].every(k => slot.loads.has(k))) break
    }
    slot.state = 'ready'
    this.#log.info({ worker: slot.index, models: slot.loaded.size }, 'replacement inference worker ready')
    this.emit('capacity')
  }

  #loadInto (slot: Slot, key: string): Promise<SessionMeta> {
    let load = slot.loads.get(key)
    if (load === undefined) {
      const model = this.#models.get(key)
      assert(model !== undefined)
      const sent = this.#send(slot, { op: 'load', key, file: model.file, ...(model.digest !== undefined ? { digest: model.digest } : {}), threads: this.#threads }).then(res => {
        assert(res.kind === 'load')
        // Every worker must hold the same content: the first load's digest is what later ones check.
        model.digest ??= res.digest
        if (res.digest !== model.digest) throw new WorkerError(`${model.file} changed on disk while the version was loading`)
        if (slot.loads.get(key) === sent) slot.loaded.add(key) // not unloaded meanwhile
        return { inputs: res.inputs, outputs: res.outputs, digest: res.digest }
      })
      sent.catch(() => {}) // the callers handle it
      slot.loads.set(key, sent)
      load = sent
    }
    return load
  }

  #send (slot: Slot, msg: Request, transfer: ArrayBuffer[] = []): Promise<Ok> {
    if (slot.state === 'dead') return Promise.reject(new WorkerUnavailableError(`inference worker ${slot.index} is not running`))
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject })
      // The id is set on the caller's fresh object, not copied by spread: a spread object per
      // run made V8 promote garbage (see common/http.ts).
      const request = msg as Request & { id: number }
      request.id = id
      this.#post(slot, request as WorkerRequest, transfer)
    })
  }

  #post (slot: Slot, msg: WorkerRequest, transfer: ArrayBuffer[] = []): void {
    slot.worker.postMessage(msg, transfer)
    slot.bell.ring()
  }

  #live (): Slot[] {
    return this.#slots.filter(s => s.state !== 'dead')
  }

  /**
   * Loads a model version into every running worker (a replacement that is starting
   * loads it too), each reading `file` itself; returns the session's input and output
   * metadata and the file's digest. A worker that dies
   * meanwhile does not fail the load: its replacement loads the model before taking work.
   */
  async load (key: string, file: string): Promise<SessionMeta> {
    assert(!this.#models.has(key), `model key ${key} is already loaded`)
    this.#models.set(key, { file })
    try {
      for (;;) {
        if (this.#closed) throw new WorkerUnavailableError('the worker pool is closed')
        const live = this.#live()
        if (live.length === 0) {
          await new Promise(resolve => this.once('spawn', resolve))
          continue
        }
        const results = await Promise.allSettled(live.map(async slot => await this.#loadInto(slot, key)))
        const failed = results.find(r => r.status === 'rejected' && !(r.reason instanceof WorkerUnavailableError))
        if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
        const ok = results.find(r => r.status === 'fulfilled')
        if (ok !== undefined) {
          await this.#untilRunnable(key)
          return ok.value
        }
        // Every worker it was sent to died: try the replacements.
      }
    } catch (err) {
      await this.unload(key)
      throw err
    }
  }

  /** Waits until a ready worker holds `key` (when only a replacement loaded it), so warm-up runs can follow. */
  async #untilRunnable (key: string): Promise<void> {
    while (!this.#closed && this.#pick(key) === undefined && this.#slots.some(s => s.state !== 'ready')) {
      await once(this, 'capacity')
    }
  }

  async unload (key: string): Promise<void> {
    this.#models.delete(key)
    await Promise.allSettled(this.#live().filter(s => s.loads.has(key)).map(async slot => {
      slot.loads.delete(key)
      slot.loaded.delete(key)
      await this.#send(slot, { op: 'unload', key })
    }))
  }

  /**
   * True when `run(key)` would start now or fail at once: some ready worker holding
   * the model has room, or no worker (running or to come) can ever run it.
   */
  hasCapacity (key?: string): boolean {
    if (this.#closed) return true
    let someday = false
    for (const s of this.#slots) {
      if (s.state !== 'ready') someday = true // a replacement (to come) loads every model
      else if (key === undefined || s.loaded.has(key)) {
        if (s.inFlight < this.#maxInFlight) return true
        someday = true
      }
    }
    return !someday
  }

  /** Ready workers holding `key` with nothing in flight (rollout shadow work runs only on those). */
  idleWorkers (key: string): number {
    if (this.#closed) return 0
    let n = 0
    for (const s of this.#slots) if (s.state === 'ready' && s.loaded.has(key) && s.inFlight === 0) n++
    return n
  }

  /** The ready worker holding `key` with the fewest jobs in flight. */
  #pick (key: string): Slot | undefined {
    let best: Slot | undefined
    for (const s of this.#slots) {
      if (s.state === 'ready' && s.loaded.has(key) && (best === undefined || s.inFlight < best.inFlight)) best = s
    }
    return best
  }

  /** Runs a batch on a ready worker; rejects at once with a `WorkerUnavailableError` when none holds the model. */
  async run (key: string, feeds: Record<string, WireTensor>, fetches: string[]): Promise<RunResult> {
    const slot = this.#closed ? undefined : this.#pick(key)
    if (slot === undefined) {
      const why = this.#closed
        ? 'the worker pool is closed'
        : this.#slots.some(s => s.state !== 'ready')
          ? 'no inference worker is ready (a replacement is starting)'
          : 'the model is not loaded in any running inference worker'
      throw new WorkerUnavailableError(why)
    }
    slot.inFlight++
    noteBatch()
    const transfer: ArrayBuffer[] = []
    for (const t of Object.values(feeds)) {
      if (!Array.isArray(t.data) && t.data.buffer instanceof ArrayBuffer && t.data.byteLength === t.data.buffer.byteLength) transfer.push(t.data.buffer)
    }
    try {
      const res = await this.#send(slot, { op: 'run', key, feeds, fetches }, transfer)
      assert(res.kind === 'run')
      return { outputs: res.outputs, computeNs: res.computeNs }
    } finally {
      slot.inFlight--
      this.emit('capacity')
    }
  }

  /**
   * Fault injection for tests: worker `index` exits with code 1, as a crash would, when
   * it next reads its messages (after the run it is computing, if any); the jobs it
   * holds then fail.
   */
  kill (index: number): void {
    const slot = this.#slots[index]
    assert(slot !== undefined)
    this.#post(slot, { op: 'exit', code: 1 })
  }

  /**
   * Stops every worker; the jobs they still hold fail. A worker exits between runs:
   * `worker.terminate()` during a native ONNX Runtime run aborts the whole process
   * (onnxruntime-node 1.30), so it is only the fallback for a worker that has not
   * exited after EXIT_GRACE_MS.
   */
  async close (): Promise<void> {
    this.#closed = true
    this.#idle?.stop()
    for (const timer of this.#restarts) clearTimeout(timer)
    this.#restarts.clear()
    this.emit('spawn') // wakes a load() waiting for a worker
    this.emit('capacity') // and one waiting for a replacement; batchers find run() failing at once
    await Promise.all(this.#slots.map(async slot => {
      if (slot.state === 'dead') return
      const exited = once(slot.worker, 'exit')
      this.#post(slot, { op: 'exit', code: 0 })
      const timer = setTimeout(() => { void slot.worker.terminate() }, EXIT_GRACE_MS)
      timer.unref()
      await exited
      clearTimeout(timer)
    }))
  }
}
