/**
 * The dynamic batcher against a fake worker pool (no ONNX Runtime): batch cutting,
 * limits, splitting, overload, failure isolation, abandoned and expired requests.
 */
import t from 'tap'
import { EventEmitter } from 'node:events'
import { Batcher, concatFeeds, splitOutputs, type Job, type BatcherOptions } from '../../../sidecar/runtime/batcher.js'
import { AbandonedError } from '../../../sidecar/core/errors.js'
import { WorkerUnavailableError, type WorkerPool, type RunResult } from '../../../sidecar/runtime/worker-pool.js'
import type { InlineSession } from '../../../sidecar/runtime/inline-session.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'
import { SidecarError } from '../../../sidecar/core/errors.js'

/** Identity "model": y = x; fails a run whose x contains a negative number. One run at a time per slot. */
class FakePool extends EventEmitter {
  busy = 0
  runs: number[] = []
  constructor (readonly slots = 1, readonly delayMs = 5) { super() }
  hasCapacity (): boolean { return this.busy < this.slots }
  async run (_key: string, feeds: Record<string, WireTensor>, _fetches: string[]): Promise<RunResult> {
    this.busy++
    const x = feeds.x as WireTensor
    this.runs.push(x.dims[0] as number)
    try {
      await new Promise(resolve => setTimeout(resolve, this.delayMs))
      if (Array.from(x.data as Float32Array).some(v => v < 0)) throw new Error('negative input')
      return { outputs: { y: { type: x.type, dims: [...x.dims], data: (x.data as Float32Array).slice() } }, computeNs: 1000 }
    } finally {
      this.busy--
      this.emit('capacity')
    }
  }
}

function batcher (pool: FakePool, opts: Partial<BatcherOptions> = {}): { b: Batcher, batches: number[] } {
  const batches: number[] = []
  const b = new Batcher(pool as unknown as WorkerPool, { model: 'm', key: 'm:1', maxBatchSize: 8, maxQueueDelayMicros: 0, maxQueueSize: 100, onBatch: r => batches.push(r), ...opts })
  return { b, batches }
}

function job (values: number[][], extra: Partial<Job> = {}): Job {
  const width = values[0]?.length ?? 0
  return {
    rows: values.length,
    feeds: { x: { type: 'float32', dims: [values.length, width], data: new Float32Array(values.flat()) } },
    fetches: ['y'],
    enqueuedNs: process.hrtime.bigint(),
    deadlineNs: 0n,
    abandoned: () => false,
    ...extra
  }
}
const yOf = (r: { outputs: Record<string, WireTensor> }): number[] => Array.from(r.outputs.y?.data as Float32Array)

t.test('concatFeeds and splitOutputs are inverses', async t => {
  const a = { x: { type: 'float32', dims: [1, 2], data: new Float32Array([1, 2]) }, s: { type: 'string', dims: [1, 1], data: ['a'] } }
  const b = { x: { type: 'float32', dims: [2, 2], data: new Float32Array([3, 4, 5, 6]) }, s: { type: 'string', dims: [2, 1], data: ['b', 'c'] } }
  const joined = concatFeeds([a, b], 3)
  t.same(joined.x?.dims, [3, 2])
  t.same(Array.from(joined.x?.data as Float32Array), [1, 2, 3, 4, 5, 6])
  t.same(joined.s?.data, ['a', 'b', 'c'])
  const parts = splitOutputs(joined, [1, 2])
  t.same(parts[0]?.x?.dims, [1, 2])
  t.same(Array.from(parts[1]?.x?.data as Float32Array), [3, 4, 5, 6])
  t.same(parts[1]?.s?.data, ['b', 'c'])
  t.throws(() => splitOutputs(joined, [1, 1]), /output 'x' has 3 rows for a batch of 2/)
})

t.test('requests queued together run as one batch and get their own rows back', async t => {
  const pool = new FakePool()
  const { b, batches } = batcher(pool)
  const results = await Promise.all([job([[1, 2]]), job([[3, 4], [5, 6]]), job([[7, 8]])].map(j => b.submit(j)))
  t.same(batches, [4], 'one batch of 4 rows')
  t.same(results.map(yOf), [[1, 2], [3, 4, 5, 6], [7, 8]])
  t.same(results.map(r => r.batchRows), [4, 4, 4])
  t.same(results[1]?.outputs.y?.dims, [2, 2])
  await b.drain()
  t.ok(b.idle)
  b.close()
})

t.test('batches never exceed max_batch_size; requests that arrive while busy form the next batch', async t => {
  const pool = new FakePool(1, 10)
  const { b, batches } = batcher(pool, { maxBatchSize: 4 })
  const all = Array.from({ length: 10 }, (_, i) => b.submit(job([[i, i]])))
  const results = await Promise.all(all)
  t.same(batches, [4, 4, 2])
  t.same(results.map(yOf), Array.from({ length: 10 }, (_, i) => [i, i]), 'answers in order, each its own')
  t.ok(pool.runs.every(r => r <= 4))
})

t.test('max_batch_size 0 runs every request alone', async t => {
  const pool = new FakePool()
  const { b, batches } = batcher(pool, { maxBatchSize: 0 })
  await Promise.all([job([[1, 1]]), job([[2, 2]]), job([[3, 3]])].map(j => b.submit(j)))
  t.same(batches, [1, 1, 1])
})

t.test('requests with different inner shapes are not batched together', async t => {
  const pool = new FakePool()
  const { b, batches } = batcher(pool)
  const r = await Promise.all([job([[1, 2]]), job([[1, 2, 3]]), job([[4, 5]])].map(j => b.submit(j)))
  t.same(batches.sort(), [1, 2])
  t.same(r.map(yOf), [[1, 2], [1, 2, 3], [4, 5]])
})

t.test('a full queue answers 503 with Retry-After', async t => {
  const pool = new FakePool(1, 20)
  const { b } = batcher(pool, { maxQueueSize: 2 })
  const ok = [b.submit(job([[1, 1]])), b.submit(job([[2, 2]]))]
  const err = await b.submit(job([[3, 3]])).catch((e: unknown) => e)
  t.type(err, SidecarError)
  t.equal((err as SidecarError).statusCode, 503)
  t.equal((err as SidecarError).headers['retry-after'], '1')
  t.match((err as Error).message, /model 'm' queue is full \(2 requests\)/)
  await Promise.all(ok)
})

t.test('one bad request does not fail its batch-mates', async t => {
  const pool = new FakePool()
  const { b } = batcher(pool)
  const settled = await Promise.allSettled([job([[1, 1]]), job([[-1, 1]]), job([[2, 2]])].map(j => b.submit(j)))
  t.equal(settled[0]?.status, 'fulfilled')
  t.equal(settled[2]?.status, 'fulfilled')
  t.same(yOf((settled[2] as PromiseFulfilledResult<{ outputs: Record<string, WireTensor> }>).value), [2, 2])
  t.equal(settled[1]?.status, 'rejected')
  const reason = (settled[1] as PromiseRejectedResult).reason as SidecarError
  t.equal(reason.statusCode, 500)
  t.match(reason.message, /model 'm' failed: negative input/)
})

t.test('abandoned and expired requests are dropped before they run', async t => {
  const pool = new FakePool(1, 30)
  const { b } = batcher(pool, { maxBatchSize: 1 })
  let gone = false
  const first = b.submit(job([[1, 1]]))
  const abandoned = b.submit(job([[2, 2]], { abandoned: () => gone })).catch((e: unknown) => e)
  const now = process.hrtime.bigint()
  const expired = b.submit(job([[3, 3]], { enqueuedNs: now, deadlineNs: now + 5_000_000n })).catch((e: unknown) => e)
  const last = b.submit(job([[4, 4]]))
  gone = true
  t.same(yOf(await first), [1, 1])
  t.type(await abandoned, AbandonedError)
  const e = await expired as SidecarError
  t.equal(e.statusCode, 504)
  t.match(e.message, /waited longer than its 5 ms deadline/)
  t.same(yOf(await last), [4, 4])
  t.same(pool.runs, [1, 1], 'only two runs happened')
})

t.test('a queue delay waits for more rows, up to the delay', async t => {
  const pool = new FakePool()
  const { b, batches } = batcher(pool, { maxQueueDelayMicros: 30_000 })
  // Two queued together have company to wait for (a lone request runs at once: runtime/batcher-queue-delay.test.ts).
  const a = [b.submit(job([[1, 1]])), b.submit(job([[3, 3]]))]
  await new Promise(resolve => setTimeout(resolve, 5))
  const c = b.submit(job([[2, 2]]))
  await Promise.all([...a, c])
  t.same(batches, [3], 'the third request joined the first two within the delay')
})

t.test('a worker that dies under a batch fails it at once with 503, without retrying each request', async t => {
  const pool = new FakePool()
  pool.run = async () => { pool.runs.push(0); throw new WorkerUnavailableError('inference worker 0 died: exited with code 1') }
  const { b } = batcher(pool)
  const settled = await Promise.allSettled([job([[1, 1]]), job([[2, 2]])].map(j => b.submit(j)))
  for (const s of settled) {
    const e = (s as PromiseRejectedResult).reason as SidecarError
    t.equal(e.code, 'OS_ERR_WORKER_UNAVAILABLE')
    t.equal(e.statusCode, 503, 'retryable, not a 500')
    t.equal(e.headers['retry-after'], '1')
    t.match(e.message, /model 'm' could not run: inference worker 0 died/)
  }
  t.same(pool.runs, [0], 'one run: the batch is not retried request by request')
  await b.drain()
})

t.test('a request waiting for a worker that never frees up is answered at its deadline', async t => {
  const pool = new FakePool()
  pool.hasCapacity = () => false // e.g. the only worker died and its replacement is starting
  const { b } = batcher(pool)
  const now = process.hrtime.bigint()
  const waiting = b.submit(job([[1, 1]], { enqueuedNs: now, deadlineNs: now + 20_000_000n })).catch((e: unknown) => e)
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise(resolve => { timer = setTimeout(() => resolve('still waiting after 10 s'), 10_000) })
  const e = await Promise.race([waiting, hung]) as SidecarError
  clearTimeout(timer)
  t.equal(e.statusCode, 504)
  t.match(e.message, /waited longer than its 20 ms deadline/)
  t.same(pool.runs, [], 'it never ran')
  await b.drain()
  b.close()
})

/** A main-thread session double: y = x, and counts its runs. */
function fakeInline (): { session: InlineSession, rows: number[] } {
  const rows: number[] = []
  const session = {
    async run (feeds: Record<string, WireTensor>): Promise<RunResult> {
      const x = feeds.x as WireTensor
      rows.push(x.dims[0] as number)
      return { outputs: { y: { type: x.type, dims: [...x.dims], data: (x.data as Float32Array).slice() } }, computeNs: 1000 }
    }
  } as unknown as InlineSession
  return { session, rows }
}

t.test('inline or worker is decided per batch by its input element count', async t => {
  const pool = new FakePool()
  const inline = fakeInline()
  // The warm-up measured 8 elements within the inline budget.
  const { b } = batcher(pool, { inline: { session: inline.session, maxElements: 8, fullBatch: true } })
  const small = await b.submit(job([[1, 2]]))
  t.equal(small.ranOn, 'inline', 'a small request runs on the main thread')
  const wide = Array.from({ length: 100_000 }, (_, i) => i % 7)
  const big = await b.submit(job([wide]))
  t.equal(big.ranOn, 'worker', 'a request with a 100k-long dimension goes to a worker')
  t.same(yOf(big), wide)
  t.same(pool.runs, [1])
  t.same(inline.rows, [1])

  // Queued together: the inline batch stops at 8 elements; the rest forms the next batch.
  const all = await Promise.all(Array.from({ length: 6 }, (_, i) => b.submit(job([[i, i]]))))
  t.same(all.map(yOf), Array.from({ length: 6 }, (_, i) => [i, i]))
  t.same(inline.rows, [1, 4, 2], 'inline batches of at most 8 elements (4 rows of 2)')
  t.same(b.executed, { inline: 3, worker: 1 })
  await b.drain()
  b.close()
})

t.test('a partial inline session (the full batch was too slow) takes only a lone queue', async t => {
  const pool = new FakePool(1, 20)
  const inline = fakeInline()
  // The warm-up fitted 2 rows of 2 in the budget, not the full batch of 8.
  const { b } = batcher(pool, { inline: { session: inline.session, maxElements: 4, fullBatch: false } })
  const lone = await b.submit(job([[1, 2]]))
  t.equal(lone.ranOn, 'inline', 'a lone request skips the worker')
  const pair = await b.submit(job([[1, 2], [3, 4]]))
  t.equal(pair.ranOn, 'inline', 'a lone request of 2 rows fits too')

  // Load: six one-row requests at once. The first batch of the queue is larger than the
  // inline bound, so it goes to the worker; while it runs, nothing runs inline.
  const all = await Promise.all(Array.from({ length: 6 }, (_, i) => b.submit(job([[i, i]]))))
  t.same(all.map(yOf), Array.from({ length: 6 }, (_, i) => [i, i]))
  t.same(all.map(r => r.ranOn), Array(6).fill('worker'), 'queued load stays on the worker')
  t.same(pool.runs, [6], 'as one batch')
  t.same(inline.rows, [1, 2])

  // A worker batch running: a small request that arrives meanwhile does not run inline
  // beside it (the worker is busy, so it waits); once the model is idle it is alone, and runs inline.
  const first = b.submit(job([[7, 7], [8, 8], [9, 9]]))
  await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(pool.busy, 1, 'the first is running on the worker')
  const second = b.submit(job([[1, 1]]))
  await new Promise(resolve => setTimeout(resolve, 5))
  t.same(inline.rows, [1, 2], 'nothing inline while a worker batch of the model runs')
  t.same([(await first).ranOn, (await second).ranOn], ['worker', 'inline'])
  t.same(b.executed, { inline: 3, worker: 2 })
  await b.drain()
  b.close()
})
