/**
 * Dynamic batching for one model version.
 *
 * Requests queue here; whenever a worker (or, for tiny models, the main-thread inline
 * session) can take work, the queue is cut into a batch
 * of requests whose non-batch dimensions agree (up to `maxBatchSize` rows), the inputs
 * are concatenated along the first dimension, run once, and the outputs are split back.
 * With no queue delay configured, nothing waits on purpose: a request that finds an idle
 * worker runs at once, and requests that arrive while the workers are busy become the
 * next batch. A batch that fails is retried one request at a time, so one bad request
 * never fails its batch-mates. Requests whose client went away, or whose deadline has
 * passed, are dropped before they run.
 */
import assert from 'node:assert/strict'
import { errors, SidecarError } from '../errors.js'
import { elementCount, type TensorData } from '../datatypes.js'
import type { WireTensor } from './protocol.js'
import type { RunResult, WorkerPool } from './worker-pool.js'
import type { InlineSession } from './inline-session.js'

export interface Job {
  /** Rows along the batch dimension (1 when batching is off). */
  rows: number
  /** Inputs keyed by name; dims[0] === rows when batching is on. */
  feeds: Record<string, WireTensor>
  fetches: string[]
  /** process.hrtime.bigint() when the request was queued. */
  enqueuedNs: bigint
  /** Absolute deadline in hrtime ns, or 0 for none. */
  deadlineNs: bigint
  /** True when nobody waits for the answer any more (client disconnected). */
  abandoned: () => boolean
}

export interface JobResult {
  outputs: Record<string, WireTensor>
  queueNs: number
  computeNs: number
  batchRows: number
}

interface Queued {
  job: Job
  signature: string
  resolve: (r: JobResult) => void
  reject: (e: Error) => void
}

export interface BatcherOptions {
  model: string
  key: string
  maxBatchSize: number
  maxQueueDelayMicros: number
  maxQueueSize: number
  /** Called once per executed batch (metrics). */
  onBatch?: (rows: number) => void
  /** Run batches on this main-thread session instead of the workers (tiny models). */
  inline?: InlineSession
}

export class Batcher {
  #pool: WorkerPool
  #opts: BatcherOptions
  #queue: Queued[] = []
  #running = 0
  #inlineBusy = false
  #scheduled = false
  #drainWaiters: Array<() => void> = []
  #onCapacity = (): void => this.#schedule()

  constructor (pool: WorkerPool, opts: BatcherOptions) {
    this.#pool = pool
    this.#opts = opts
    pool.on('capacity', this.#onCapacity)
  }

  get key (): string { return this.#opts.key }
  get queued (): number { return this.#queue.length }
  get idle (): boolean { return this.#queue.length === 0 && this.#running === 0 }

  submit (job: Job): Promise<JobResult> {
    if (this.#queue.length >= this.#opts.maxQueueSize) {
      return Promise.reject(errors.OVERLOADED(this.#opts.model, this.#opts.maxQueueSize))
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, signature: signatureOf(job), resolve, reject })
      this.#schedule()
    })
  }

  /** Resolves once everything queued or running has finished. */
  drain (): Promise<void> {
    if (this.idle) return Promise.resolve()
    return new Promise(resolve => this.#drainWaiters.push(resolve))
  }

  /** Stops listening to the pool; call after `drain()`. */
  close (): void {
    this.#pool.off('capacity', this.#onCapacity)
  }

  #schedule (): void {
    if (this.#scheduled || this.#queue.length === 0) return
    this.#scheduled = true
    // setImmediate runs after the poll phase: every request read in this turn of the
    // event loop is queued before the batch is cut.
    setImmediate(() => {
      this.#scheduled = false
      this.#pump()
    })
  }

  #pump (): void {
    while (this.#queue.length > 0 && this.#canRun()) {
      this.#dropDead()
      if (this.#queue.length === 0) break
      const waitUs = this.#waitMicros()
      if (waitUs > 0) {
        this.#scheduled = true
        const again = (): void => { this.#scheduled = false; this.#pump() }
        if (waitUs >= 1000) setTimeout(again, Math.floor(waitUs / 1000))
        else setImmediate(again)
        return
      }
      this.#dispatch(this.#cutBatch())
    }
    this.#checkDrained()
  }

  #canRun (): boolean {
    return this.#opts.inline !== undefined ? !this.#inlineBusy : this.#pool.hasCapacity()
  }

  /**
   * How much longer to hold the queue, in µs (0: cut a batch now). With a queue delay, an
   * incomplete batch waits for more requests until the oldest has waited that long.
   */
  #waitMicros (): number {
    if (this.#opts.maxQueueDelayMicros === 0 || this.#opts.maxBatchSize === 0) return 0
    let rows = 0
    for (const q of this.#queue) rows += q.job.rows
    if (rows >= this.#opts.maxBatchSize) return 0
    const waitedUs = Number(process.hrtime.bigint() - (this.#queue[0] as Queued).job.enqueuedNs) / 1000
    return Math.max(0, this.#opts.maxQueueDelayMicros - waitedUs)
  }

  #dropDead (): void {
    const now = process.hrtime.bigint()
    this.#queue = this.#queue.filter(q => {
      if (q.job.abandoned()) {
        q.reject(new AbandonedError())
        return false
      }
      if (q.job.deadlineNs !== 0n && now > q.job.deadlineNs) {
        q.reject(errors.DEADLINE_EXCEEDED(Number(q.job.deadlineNs - q.job.enqueuedNs) / 1e6))
        return false
      }
      return true
    })
  }

  #cutBatch (): Queued[] {
    const first = this.#queue.shift() as Queued
    const batch = [first]
    if (this.#opts.maxBatchSize === 0) return batch
    let rows = first.job.rows
    for (let i = 0; i < this.#queue.length && rows < this.#opts.maxBatchSize;) {
      const q = this.#queue[i] as Queued
      if (q.signature === first.signature && rows + q.job.rows <= this.#opts.maxBatchSize) {
        batch.push(q)
        rows += q.job.rows
        this.#queue.splice(i, 1)
      } else {
        i++
      }
    }
    return batch
  }

  #dispatch (batch: Queued[]): void {
    this.#running++
    if (this.#opts.inline !== undefined) this.#inlineBusy = true
    const started = process.hrtime.bigint()
    this.#execute(batch, started).finally(() => {
      this.#running--
      this.#inlineBusy = false
      this.#schedule()
      this.#checkDrained()
    })
  }

  async #execute (batch: Queued[], started: bigint): Promise<void> {
    const first = batch[0] as Queued
    const rows = batch.reduce((n, q) => n + q.job.rows, 0)
    this.#opts.onBatch?.(rows)
    let result: RunResult
    try {
      const feeds = batch.length === 1 ? first.job.feeds : concatFeeds(batch.map(q => q.job.feeds), rows)
      result = this.#opts.inline !== undefined
        ? await this.#opts.inline.run(feeds, first.job.fetches)
        : await this.#pool.run(this.#opts.key, feeds, first.job.fetches)
    } catch (err) {
      if (batch.length > 1) {
        // One request may be what broke the batch: give each its own run.
        await Promise.all(batch.map(async q => await this.#execute([q], process.hrtime.bigint())))
        return
      }
      first.reject(errors.INFERENCE_FAILED(this.#opts.model, (err as Error).message))
      return
    }
    let parts: Array<Record<string, WireTensor>>
    try {
      parts = batch.length === 1 ? [result.outputs] : splitOutputs(result.outputs, batch.map(q => q.job.rows))
    } catch (err) {
      await Promise.all(batch.map(async q => await this.#execute([q], process.hrtime.bigint())))
      return
    }
    batch.forEach((q, i) => {
      q.resolve({
        outputs: parts[i] as Record<string, WireTensor>,
        queueNs: Number(started - q.job.enqueuedNs),
        computeNs: result.computeNs,
        batchRows: rows
      })
    })
  }

  #checkDrained (): void {
    if (!this.idle) return
    const waiters = this.#drainWaiters
    this.#drainWaiters = []
    for (const w of waiters) w()
  }
}

/** A request whose client disconnected before it ran; nobody is told. */
export class AbandonedError extends SidecarError {
  constructor () {
    super('OS_ERR_ABANDONED', 499, 'client closed the request before inference')
  }
}

function signatureOf (job: Job): string {
  let sig = ''
  for (const name of Object.keys(job.feeds).sort()) {
    const t = job.feeds[name] as WireTensor
    sig += `${name}:${t.type}:${t.dims.slice(1).join('x')};`
  }
  return sig + '|' + job.fetches.join(',')
}

export function concatFeeds (feeds: Array<Record<string, WireTensor>>, rows: number): Record<string, WireTensor> {
  const first = feeds[0] as Record<string, WireTensor>
  const out: Record<string, WireTensor> = {}
  for (const [name, t] of Object.entries(first)) {
    const dims = [rows, ...t.dims.slice(1)]
    if (Array.isArray(t.data)) {
      out[name] = { type: t.type, dims, data: feeds.flatMap(f => (f[name] as WireTensor).data as string[]) }
      continue
    }
    const data = new (t.data.constructor as new (n: number) => Exclude<TensorData, string[]>)(elementCount(dims))
    let offset = 0
    for (const f of feeds) {
      const part = (f[name] as WireTensor).data as Exclude<TensorData, string[]>
      ;(data as Float32Array).set(part as Float32Array, offset)
      offset += part.length
    }
    assert.equal(offset, data.length)
    out[name] = { type: t.type, dims, data }
  }
  return out
}

export function splitOutputs (outputs: Record<string, WireTensor>, rowsPerJob: number[]): Array<Record<string, WireTensor>> {
  const total = rowsPerJob.reduce((a, b) => a + b, 0)
  const parts = rowsPerJob.map(() => ({} as Record<string, WireTensor>))
  for (const [name, t] of Object.entries(outputs)) {
    if (t.dims[0] !== total) throw new Error(`output '${name}' has ${t.dims[0]} rows for a batch of ${total}`)
    const perRow = elementCount(t.dims.slice(1))
    let row = 0
    rowsPerJob.forEach((rows, i) => {
      const start = row * perRow
      const end = (row + rows) * perRow
      const data = Array.isArray(t.data) ? t.data.slice(start, end) : (t.data as Float32Array).slice(start, end)
      ;(parts[i] as Record<string, WireTensor>)[name] = { type: t.type, dims: [rows, ...t.dims.slice(1)], data }
      row += rows
    })
  }
  return parts
}

