/**
 * The idle release (issue 24): a burst's end is seen once, `quietTicks` quiet ticks after its
 * last batch; the pool then trims the main thread and every worker, and the workers keep
 * serving.
 */
import t from 'tap'
import path from 'node:path'
import { readFileSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { BurstEnd, IdleRelease, noteBatch, tickMs } from '../../../sidecar/runtime/idle-release.js'
import { WorkerPool } from '../../../sidecar/runtime/worker-pool.js'
import { InlineSession } from '../../../sidecar/runtime/inline-session.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'
import { memoryLogger, FIXTURE_REPO } from '../../fixtures/sidecar.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

t.test('BurstEnd: nothing before any batch; once per burst, after quietTicks quiet ticks', async t => {
  const end = new BurstEnd(3)
  t.same([0, 0, 0, 0].map(c => end.tick(c)), [false, false, false, false], 'no batch ever: never')
  t.same([1, 4, 4, 4].map(c => end.tick(c)), [false, false, false, false], 'batches, then two quiet ticks')
  t.equal(end.tick(4), true, 'the third quiet tick ends the burst')
  t.same([4, 4, 4, 4].map(c => end.tick(c)), [false, false, false, false], 'and only once')
  t.same([5, 5, 6, 6, 6].map(c => end.tick(c)), [false, false, false, false, false], 'a batch restarts the quiet count')
  t.equal(end.tick(6), true)
  const thrice = new BurstEnd(2, 0, 3)
  t.same([1, 1, 1, 1, 1, 1, 1, 1, 1].map(c => thrice.tick(c)), [false, false, true, false, true, false, true, false, false], 'times: every quietTicks while quiet, then no more')
  const later = new BurstEnd(1, 41)
  t.equal(later.tick(41), false, 'batches before it began watching are no burst')
  t.equal(later.tick(42), false)
  t.equal(later.tick(42), true)
})

t.test('BurstEnd refuses a tick count that is not a positive integer', async t => {
  t.throws(() => new BurstEnd(0), /quietTicks must be a positive integer, not 0/)
  t.throws(() => new BurstEnd(1.5), /not 1\.5/)
  t.throws(() => new BurstEnd(1, 0, 0), /times must be a positive integer, not 0/)
})

t.test('tickMs: one second, or the quiet time when shorter', async t => {
  t.equal(tickMs(10_000), 1000)
  t.equal(tickMs(250), 250)
})

t.test('IdleRelease calls release once after the last batch, and never once stopped', async t => {
  let released = 0
  const idle = new IdleRelease(20, () => { released++ })
  t.teardown(() => idle.stop())
  await sleep(80)
  t.equal(released, 0, 'no batch: nothing to give back')
  noteBatch()
  noteBatch()
  await sleep(200)
  t.equal(released, 3, 'three times, 20 ms apart')
  idle.stop()
  noteBatch()
  await sleep(80)
  t.equal(released, 3)
})

const addFile = path.join(FIXTURE_REPO, 'add', '1', 'model.onnx')
const addFeeds = (): Record<string, WireTensor> => ({ x: { type: 'float32', dims: [1, 4], data: new Float32Array([1, 2, 3, 4]) } })

t.test('a batch run inline on the main thread counts too', async t => {
  const session = await InlineSession.create(new Uint8Array(readFileSync(addFile)), 1)
  t.teardown(() => session.release())
  let released = 0
  const idle = new IdleRelease(20, () => { released++ })
  t.teardown(() => idle.stop())
  await sleep(60)
  await session.run(addFeeds(), ['y'])
  await sleep(200)
  t.equal(released, 3)
})

t.test('after a burst the pool sends trim to each worker, three times', async t => {
  // Workers that answer loads and runs, and tell the test when they read a trim.
  const workers: Worker[] = []
  const code = `
    const { parentPort } = require('node:worker_threads')
    parentPort.on('message', m => m.op === 'exit' ? process.exit(m.code) : parentPort.postMessage(m.op === 'trim'
      ? { trimmed: true }
      : m.op === 'load' ? { id: m.id, ok: true, kind: 'load', inputs: [], outputs: [], digest: 'd' } : { id: m.id, ok: true, kind: 'run', outputs: {}, computeNs: 1 }))`
  const pool = new WorkerPool({ workers: 2, threads: 1, logger: memoryLogger().logger, idleReleaseMs: 30, createWorker: () => { const w = new Worker(code, { eval: true }); workers.push(w); return w } })
  t.teardown(() => pool.close())
  const trims = [0, 0]
  workers.forEach((w, i) => w.on('message', (m: { trimmed?: boolean }) => { if (m.trimmed === true) trims[i] = (trims[i] ?? 0) + 1 }))
  await pool.load('m#1', '/nowhere')
  await sleep(150)
  t.same(trims, [0, 0], 'loads alone are no burst')
  await Promise.all([pool.run('m#1', {}, []), pool.run('m#1', {}, [])])
  await sleep(300)
  t.same(trims, [3, 3])
})

t.test('a real inference worker keeps serving after a trim; 0 turns the release off', async t => {
  const pool = new WorkerPool({ workers: 1, threads: 1, logger: memoryLogger().logger, idleReleaseMs: 0 })
  t.teardown(() => pool.close())
  await pool.load('add#1', addFile)
  const before = await pool.run('add#1', addFeeds(), ['y'])
  pool.releaseIdleMemory()
  const after = await pool.run('add#1', addFeeds(), ['y'])
  t.same(Array.from(after.outputs.y?.data as Float32Array), Array.from(before.outputs.y?.data as Float32Array))
})

t.test('in-process, the trim is the main thread\'s alone: the slot ignores it', async t => {
  const pool = new WorkerPool({ workers: 1, threads: 1, logger: memoryLogger().logger, inProcess: true, idleReleaseMs: 20 })
  t.teardown(() => pool.close())
  await pool.load('add#1', addFile)
  await pool.run('add#1', addFeeds(), ['y'])
  await sleep(100) // the release ran (main thread collected); the slot got nothing
  const r = await pool.run('add#1', addFeeds(), ['y'])
  t.equal(r.outputs.y?.dims.join(','), '1,4')
})
