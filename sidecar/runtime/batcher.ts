/**
 * Dynamic batching for one model version.
 *
 * Requests queue here; whenever a worker (or, for tiny models, the main-thread inline
 * session) can take work, the queue is cut into a batch
 * of requests whose non-batch dimensions agree (up to `maxBatchSize` rows), the inputs
 * are concatenated along the first dimension, run once, and the outputs are split back.
 * With no queue delay configured, nothing waits on purpose: a request that finds an idle
 * worker runs at once, and requests that arrive while the workers are busy become the
 * next batch. A queue delay (`max_queue_delay_microseconds`) holds an incomplete batch
 * only when there is company: a lone request, with nothing else queued or running for
 * the model, runs at once. A batch that fails is retried one request at a time, so one bad request
 * never fails its batch-mates. Requests whose client went away, or whose deadline has
 * passed, are dropped before they run; a timer wakes the queue at the earliest deadline,
 * so a request never waits past it even while no worker can take work.
 *
 * Where a batch runs is decided per batch: a model with an inline session runs a batch on
 * the main thread only while its input element count is within what the warm-up measured
 * inside the inline budget (`inline.maxElements`); a larger batch (say one request with a
 * 100k-long dynamic dimension) goes to the workers and never blocks the event loop.
 * A worker that dies under a batch fails it at once with 503 + Retry-After
 * (`OS_ERR_WORKER_UNAVAILABLE`), never 500, and the batch is not retried request by request.
 */
import assert from 'node:assert/strict'
import { AbandonedError, errors } from '../core/errors.js'
import { elementCount, type TensorData } from '../core/datatypes.js'
import type { RunResult, WireTensor } from './protocol.js'
import { WorkerUnavailableError, type WorkerPool } from './worker-pool.js'
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
  /** The sidecar's own warm-up: its rows are not counted in `onBatch`. */
  quiet?: boolean
}

export interface JobResult {
  outputs: Record<string, WireTensor>
  queueNs: number
  computeNs: number
  batchRows: number
  /** Where the batch ran. */
  ranOn: RunsOn
}

export type RunsOn = 'inline' | 'worker'

interface Queued {
  job: Job
  /** What a batch-mate must match (`signatureOf`): made only when a batch is cut from more than one request. */
  signature: string | undefined
  /** Input elements, all inputs together. */
  elements: number
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
  onBatch?: (rows: number, ranOn: RunsOn) => void
  /**
   * Run batches of at most `maxElements` input elements on this main-thread session
   * instead of the workers (models that are tiny at their warm-up shape). `fullBatch`: the
   * warm-up's full batch fits, so every batch that fits runs here; otherwise only a model
   * with nothing running whose whole queue fits (a lone request: it skips the worker
   * round trip, and load keeps its batches on the workers).
   */
  inline?: { session: InlineSession, maxElements: number, fullBatch: boolean }
}

export class Batcher {
  #pool: WorkerPool
  #opts: BatcherOptions
  #queue: Queued[] = []
  #running = 0
  #inlineBusy = false
  #scheduled = false
  #deadlineTimer: NodeJS.Timeout | undefined
  /** Set while an incomplete batch waits out max_queue_delay_microseconds. */
  #delayTimer: NodeJS.Timeout | undefined
  #executed = { inline: 0, worker: 0 }
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
  /** Batches executed so far, by where they ran. */
  get executed (): { inline: number, worker: number } { return { ...this.#executed } }

  submit (job: Job): Promise<JobResult> {
    if (this.#queue.length >= this.#opts.maxQueueSize) {
      return Promise.reject(errors.OVERLOADED(this.#opts.model, this.#opts.maxQueueSize))
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, signature: undefined, elements: elementsOf(job), resolve, reject })
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
    clearTimeout(this.#deadlineTimer)
    clearTimeout(this.#delayTimer)
  }

  #schedule (): void {
    if (this.#delayTimer !== undefined) {
      // Holding an incomplete batch: look again now (a new request may complete it).
      clearTimeout(this.#delayTimer)
      this.#delayTimer = undefined
      this.#scheduled = false
    }
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
    for (;;) {
      this.#dropDead()
      if (this.#queue.length === 0) break
      const where = this.#route(this.#queue[0] as Queued)
      if (where === undefined) break
      const waitUs = this.#waitMicros()
      if (waitUs > 0) {
        this.#scheduled = true
        const again = (): void => { this.#delayTimer = undefined; this.#scheduled = false; this.#pump() }
        if (waitUs >= 1000) this.#delayTimer = setTimeout(again, Math.floor(waitUs / 1000))
        else setImmediate(again)
        return
      }
      this.#dispatch(this.#cutBatch(where === 'inline' ? (this.#opts.inline?.maxElements as number) : Infinity), where)
    }
    this.#armDeadline()
    this.#checkDrained()
  }

  /**
   * Where a batch led by `head` runs, or undefined while that place is busy. With a
   * full-batch inline session, a batch small enough for it waits for it (the next batch
   * collects meanwhile); with a partial one (see BatcherOptions.inline), only a lone
   * queue runs inline. Anything else goes to the workers.
   */
  #route (head: Queued): RunsOn | undefined {
    const inline = this.#opts.inline
    if (inline !== undefined && head.elements <= inline.maxElements) {
      if (inline.fullBatch) return this.#inlineBusy ? undefined : 'inline'
      if (this.#running === 0 && this.#queuedElements() <= inline.maxElements) return 'inline'
    }
    return this.#pool.hasCapacity(this.#opts.key) ? 'worker' : undefined
  }

  #queuedElements (): number {
    let n = 0
    for (const q of this.#queue) n += q.elements
    return n
  }

  /** Wakes the queue when its earliest deadline passes, so nothing waits past it for a busy or missing worker. */
  #armDeadline (): void {
    clearTimeout(this.#deadlineTimer)
    this.#deadlineTimer = undefined
    let earliest = 0n
    for (const q of this.#queue) {
      if (q.job.deadlineNs !== 0n && (earliest === 0n || q.job.deadlineNs < earliest)) earliest = q.job.deadlineNs
    }
    if (earliest === 0n) return
    const ms = Math.max(0, Math.ceil(Number(earliest - process.hrtime.bigint()) / 1e6)) + 1
    this.#deadlineTimer = setTimeout(() => { this.#deadlineTimer = undefined; this.#pump() }, ms)
    this.#deadlineTimer.unref()
  }

  /**
   * How much longer to hold the queue, in µs (0: cut a batch now). With a queue delay, an
   * incomplete batch waits for more requests until the oldest has waited that long.
   */
  #waitMicros (): number {
    if (this.#opts.maxQueueDelayMicros === 0 || this.#opts.maxBatchSize === 0) return 0
    // A lone request (nothing else queued or running for this model) has no company to
    // wait for: requests that arrive while it runs form the next batch anyway.
    if (this.#queue.length === 1 && this.#running === 0) return 0
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

  /** The head of the queue and the requests that can join it, up to max_batch_size rows and `maxElements` input elements. */
  #cutBatch (maxElements: number): Queued[] {
    const first = this.#queue.shift() as Queued
    const batch = [first]
    if (this.#opts.maxBatchSize === 0) return batch
    let rows = first.job.rows
    let elements = first.elements
    for (let i = 0; i < this.#queue.length && rows < this.#opts.maxBatchSize;) {
      const q = this.#queue[i] as Queued
      if (signatureOfQueued(q) === signatureOfQueued(first) && rows + q.job.rows <= this.#opts.maxBatchSize && elements + q.elements <= maxElements) {
        batch.push(q)
        rows += q.job.rows
        elements += q.elements
        this.#queue.splice(i, 1)
      } else {
        i++
      }
    }
    return batch
  }

  #dispatch (batch: Queued[], where: RunsOn): void {
    this.#running++
    if (where === 'inline') this.#inlineBusy = true
    const started = process.hrtime.bigint()
    // #execute settles every request itself; a throw after that is a bug, and it must not
    // leave a request unanswered or become an unhandled rejection.
    void this.#execute(batch, started, where).catch((err: unknown) => {
      for (const q of batch) q.reject(errors.INFERENCE_FAILED(this.#opts.model, (err as Error).message))
    }).finally(() => {
      this.#running--
      if (where === 'inline') this.#inlineBusy = false
      this.#schedule()
      this.#checkDrained()
    })
  }

  async #execute (batch: Queued[], started: bigint, where: RunsOn): Promise<void> {
    const first = batch[0] as Queued
    let rows = 0
    let counted = 0
    for (const q of batch) {
      const n = q.job.rows
      rows += n
      counted += q.job.quiet === true ? 0 : n // no property read in either arm: the warm-up leaves no branch uncompiled
    }
    this.#executed[where]++
    if (counted > 0) this.#opts.onBatch?.(counted, where)
    let result: RunResult
    try {
      const feeds = batch.length === 1 ? first.job.feeds : concatFeeds(batch.map(q => q.job.feeds), rows)
      result = where === 'inline'
        ? await (this.#opts.inline?.session as InlineSession).run(feeds, first.job.fetches)
        : await this.#pool.run(this.#opts.key, feeds, first.job.fetches)
    } catch (err) {
      if (err instanceof WorkerUnavailableError) {
        // The worker died under the batch (or none can run it): nothing is wrong with the requests.
        for (const q of batch) q.reject(errors.WORKER_UNAVAILABLE(this.#opts.model, err.message))
        return
      }
      if (batch.length > 1) {
        // One request may be what broke the batch: give each its own run.
        await Promise.all(batch.map(async q => await this.#execute([q], process.hrtime.bigint(), where)))
        return
      }
      first.reject(errors.INFERENCE_FAILED(this.#opts.model, (err as Error).message))
      return
    }
    let parts: Array<Record<string, WireTensor>>
    try {
      parts = batch.length === 1 ? [result.outputs] : splitOutputs(result.outputs, batch.map(q => q.job.rows))
    } catch (err) {
      await Promise.all(batch.map(async q => await this.#execute([q], process.hrtime.bigint(), where)))
      return
    }
    batch.forEach((q, i) => {
      q.resolve({
        outputs: parts[i] as Record<string, WireTensor>,
        queueNs: Number(started - q.job.enqueuedNs),
        computeNs: result.computeNs,
        batchRows: rows,
        ranOn: where
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

/** A queued request's signature, made on first use (a lone request never needs one). */
function signatureOfQueued (q: Queued): string {
  q.signature ??= signatureOf(q.job)
  return q.signature
}

function signatureOf (job: Job): string {
  let sig = ''
  for (const name of Object.keys(job.feeds).sort()) {
    const t = job.feeds[name] as WireTensor
    sig += `${name}:${t.type}:${t.dims.slice(1).join('x')};`
  }
  return sig + '|' + job.fetches.join(',')
}

function elementsOf (job: Job): number {
  let n = 0
  for (const t of Object.values(job.feeds)) n += t.data.length
  return n
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

