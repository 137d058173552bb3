/**
 * max_queue_delay_microseconds buys company, never costs a lone request: with nothing
 * else queued or running for the model, a request runs at once (issue 13). Counted in
 * event-loop turns, not milliseconds: with a 60 s delay, a request that waited for the
 * delay would not have reached the pool after a few turns.
 */
import t from 'tap'
import { EventEmitter } from 'node:events'
import { Batcher } from '../../../sidecar/runtime/batcher.js'
import type { RunResult, WorkerPool } from '../../../sidecar/runtime/worker-pool.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'

/** Identity model; each run finishes when the test calls `finish()`. */
class HeldPool extends EventEmitter {
  runs: number[] = []
  #held: Array<() => void> = []
  hasCapacity (): boolean { return true }
  async run (_key: string, feeds: Record<string, WireTensor>): Promise<RunResult> {
    const x = feeds.x as WireTensor
    this.runs.push(x.dims[0] as number)
    await new Promise<void>(resolve => this.#held.push(resolve))
    return { outputs: { y: x }, computeNs: 1 }
  }

  finish (): void {
    for (const f of this.#held.splice(0)) f()
  }
}

const DELAY_US = 60_000_000 // 60 s: never waited out within a test
const turns = async (n: number): Promise<void> => { for (let i = 0; i < n; i++) await new Promise(resolve => setImmediate(resolve)) }
const job = (v: number) => ({
  rows: 1,
  feeds: { x: { type: 'float32', dims: [1, 1], data: new Float32Array([v]) } },
  fetches: ['y'],
  enqueuedNs: process.hrtime.bigint(),
  deadlineNs: 0n,
  abandoned: () => false
})

function setup (): { pool: HeldPool, b: Batcher } {
  const pool = new HeldPool()
  const b = new Batcher(pool as unknown as WorkerPool, { model: 'm', key: 'm:1', maxBatchSize: 8, maxQueueDelayMicros: DELAY_US, maxQueueSize: 100 })
  return { pool, b }
}

t.test('a lone request runs at once, without waiting out the queue delay', async t => {
  const { pool, b } = setup()
  const done = b.submit(job(1))
  await turns(3)
  t.same(pool.runs, [1], 'the lone request reached the pool within three event-loop turns')
  pool.finish()
  t.equal((await done).batchRows, 1)
  await b.drain()
  b.close()
})

t.test('requests that arrive while one runs wait for company, up to the delay or a full batch', async t => {
  const { pool, b } = setup()
  const first = b.submit(job(1))
  await turns(3)
  t.same(pool.runs, [1])
  // Seven more arrive while the first runs: queued together, they wait for an eighth (a full batch).
  const more = Array.from({ length: 7 }, (_, i) => b.submit(job(i + 2)))
  pool.finish()
  await first
  await turns(5)
  t.same(pool.runs, [1], 'seven queued requests wait for company (the delay is 60 s)')
  const last = b.submit(job(9))
  await turns(3)
  t.same(pool.runs, [1, 8], 'the eighth request completes the batch, which runs at once')
  pool.finish()
  await Promise.all([...more, last])
  await b.drain()
  b.close()
})
