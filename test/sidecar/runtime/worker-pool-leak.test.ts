import t from 'tap'
import path from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { WorkerPool } from '../../../sidecar/runtime/worker-pool.js'
import { memoryLogger, EXAMPLE_REPO } from '../../fixtures/sidecar.js'

const rssMiB = (): number => process.memoryUsage.rss() / 2 ** 20

/**
 * V8's gc(), whether or not node runs with --expose-gc: the flag set at run time exposes it
 * to contexts made after, such as vm's. Throws when it does not (then RSS would measure nothing).
 */
function exposeGc (): () => void {
  v8.setFlagsFromString('--expose-gc')
  const gc: unknown = vm.runInNewContext('gc')
  if (typeof gc !== 'function') throw new Error('gc() is not available: the leak test cannot force a collection')
  return gc as () => void
}

t.test('gc() really collects', async t => {
  const gc = exposeGc()
  const ref = new WeakRef({ big: new Array(1000).fill(0) })
  await new Promise(resolve => setImmediate(resolve)) // WeakRef targets are kept until the end of the job that made them
  gc()
  t.equal(ref.deref(), undefined, 'an unreachable object is gone after gc()')
})

t.test('100 load/run/unload cycles do not grow memory', async t => {
  const gc = exposeGc()
  const { logger } = memoryLogger()
  const pool = new WorkerPool({ workers: 1, threads: 1, logger })
  t.teardown(() => pool.close())
  const file = path.join(EXAMPLE_REPO, 'digits', '1', 'model.onnx')
  const cycle = async (i: number): Promise<void> => {
    const key = `digits/1#${i}`
    await pool.load(key, file)
    const out = await pool.run(key, { input: { type: 'float32', dims: [4, 64], data: new Float32Array(256).fill(0.5) } }, ['label', 'probabilities'])
    if (out.outputs.probabilities?.dims.join('x') !== '4x10') throw new Error('bad output')
    await pool.unload(key)
  }
  for (let i = 0; i < 10; i++) await cycle(i) // warm up allocators and caches
  gc()
  const before = rssMiB()
  for (let i = 10; i < 110; i++) await cycle(i)
  gc()
  const after = rssMiB()
  t.comment(`RSS ${before.toFixed(1)} MiB -> ${after.toFixed(1)} MiB after 100 cycles`)
  t.ok(after - before < 10, `RSS grew ${(after - before).toFixed(1)} MiB over 100 cycles (bound 10 MiB; 100 leaked digits sessions measured at ~20 MiB)`)
})
