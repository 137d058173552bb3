/**
 * `--inference-thread main`: ONNX Runtime runs on the main thread, with no inference worker
 * thread and no second (inline) session next to it; health still answers from the metrics
 * thread.
 */
import t from 'tap'
import path from 'node:path'
import { once } from 'node:events'
import { request } from 'undici'
import { WorkerPool } from '../../../sidecar/runtime/worker-pool.js'
import { MainThreadSlot } from '../../../sidecar/runtime/main-thread-slot.js'
import { serveOptions } from '../../../common/serve-options.js'
import { readConfig } from '../../../common/config.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'
import { memoryLogger, startSidecar, EXAMPLE_REPO, FIXTURE_REPO } from '../../fixtures/sidecar.js'

t.test('--inference-thread: worker by default, main on request', async t => {
  t.equal(readConfig(serveOptions(), [], {}).inferenceThread, 'worker')
  t.equal(readConfig(serveOptions(), ['--inference-thread', 'main'], {}).inferenceThread, 'main')
  t.equal(readConfig(serveOptions(), [], { ONNX_SIDECAR_INFERENCE_THREAD: 'main' }).inferenceThread, 'main')
  t.throws(() => readConfig(serveOptions(), ['--inference-thread', 'gpu'], {}))
})

t.test('an in-process pool runs on this thread: inputs are not transferred to a worker', async t => {
  const { logger } = memoryLogger()
  const file = path.join(FIXTURE_REPO, 'add', '1', 'model.onnx')
  const run = async (inProcess: boolean, hop?: 'ring' | 'message'): Promise<{ detached: boolean, y: number[] }> => {
    const pool = new WorkerPool({ workers: 1, threads: 1, logger, inProcess, ...(hop !== undefined ? { hop } : {}) })
    try {
      await pool.load('add#1', file)
      const x = new Float32Array([1, 2, 3, 4])
      const res = await pool.run('add#1', { x: { type: 'float32', dims: [1, 4], data: x } as WireTensor }, ['y'])
      return { detached: x.byteLength === 0, y: Array.from(res.outputs.y?.data as Float32Array) }
    } finally {
      await pool.close()
    }
  }
  t.same(await run(false, 'message'), { detached: true, y: [2, 3, 4, 5] }, 'a worker thread by message: the input buffer moved to it')
  t.same(await run(false, 'ring'), { detached: false, y: [2, 3, 4, 5] }, 'a worker thread by the job ring: the input was copied into shared memory')
  t.same(await run(true), { detached: false, y: [2, 3, 4, 5] }, 'in process: nothing crosses a thread')
  const pool = new WorkerPool({ workers: 3, threads: 1, logger, inProcess: true })
  t.equal(pool.size, 1, 'one slot whatever --workers says')
  await pool.close()
})

t.test('a sidecar with inference on the main thread serves, keeps no inline session, and answers health', async t => {
  const s = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }], inProcess: true, inlineComputeUs: 100_000 })
  t.teardown(() => s.close())
  t.equal(s.sidecar.pool.inProcess, true)
  const mv = s.sidecar.manager.resolve('iris')
  t.equal(mv.inline, undefined, 'no second session on the main thread: the pool already runs there')
  const res = await s.post('/v2/models/iris/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] })
  t.equal(res.status, 200)
  t.equal(res.body.outputs.length > 0, true)
  const health = await request(`${s.metricsUrl}/v2/health/ready`)
  t.equal(health.statusCode, 200)
  await health.body.dump()
})

t.test('the main-thread slot refuses a job ring, as a worker without one would', async t => {
  const slot = new MainThreadSlot()
  const answer = once(slot, 'message')
  slot.postMessage({ op: 'attach-ring', id: 7, buffer: new SharedArrayBuffer(64), spinNs: 0 })
  t.same(await answer, [{ id: 7, ok: false, error: 'no job ring on the main thread' }])
  await slot.terminate()
})
