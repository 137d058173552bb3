/**
 * `--inference-thread main`: ONNX Runtime runs on the main thread, with no inference worker
 * thread and no second (inline) session next to it; health still answers from the metrics
 * thread.
 */
import t from 'tap'
import path from 'node:path'
import { request } from 'undici'
import { WorkerPool } from '../../../sidecar/runtime/worker-pool.js'
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
  const run = async (inProcess: boolean): Promise<{ detached: boolean, y: number[] }> => {
    const pool = new WorkerPool({ workers: 1, threads: 1, logger, inProcess })
    try {
      await pool.load('add#1', file)
      const x = new Float32Array([1, 2, 3, 4])
      const res = await pool.run('add#1', { x: { type: 'float32', dims: [1, 4], data: x } as WireTensor }, ['y'])
      return { detached: x.byteLength === 0, y: Array.from(res.outputs.y?.data as Float32Array) }
    } finally {
      await pool.close()
    }
  }
  t.same(await run(false), { detached: true, y: [2, 3, 4, 5] }, 'a worker thread: the input buffer moved to it')
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
