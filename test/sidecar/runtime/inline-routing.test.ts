/**
 * Inline or worker, per batch: a model that is tiny at its warm-up shape (dynamic
 * non-batch dimensions 1) runs small batches on the main thread, but a request with a
 * huge dynamic dimension goes to a worker instead of blocking the event loop.
 */
import t from 'tap'
import { encodeModel } from '../../../bench/onnx-builder.js'
import { repositorySidecar } from '../../fixtures/repository.js'

/** y = x + 1 on x: float32 [batch, len], both dimensions dynamic. */
const wideModel = encodeModel({
  name: 'wide',
  inputs: [{ name: 'x', shape: ['batch', 'len'] }],
  outputs: [{ name: 'y', shape: ['batch', 'len'] }],
  initializers: [{ name: 'one', dims: [], data: new Float32Array([1]) }],
  nodes: [{ op: 'Add', inputs: ['x', 'one'], outputs: ['y'] }]
})

t.test('a request with a huge dynamic dimension runs on a worker; small ones stay inline', async t => {
  const s = await repositorySidecar(t, { wide: { versions: { 1: wideModel }, config: 'max_batch_size: 8\n' } }, { inlineComputeUs: 100_000 })
  const mv = s.sidecar.manager.resolve('wide')
  t.ok(mv.inline !== undefined, 'cheap at its warm-up shape: the model has an inline session')
  t.equal(mv.inlineMaxElements, 8, 'the warm-up measured a full batch of 8 rows × len 1')

  const infer = async (len: number): Promise<{ status: number, y: number[] }> => {
    const data = Array.from({ length: len }, (_, i) => i % 5)
    const res = await s.post('/v2/models/wide/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, len], data }] })
    return { status: res.status, y: res.body.outputs?.[0]?.data }
  }

  const small = await infer(6)
  t.equal(small.status, 200)
  t.same(small.y, [1, 2, 3, 4, 5, 1])
  t.same(mv.batcher.executed, { inline: 1, worker: 0 }, 'a small request runs inline')

  const huge = await infer(100_000)
  t.equal(huge.status, 200)
  t.equal(huge.y.length, 100_000)
  t.same(huge.y.slice(0, 6), [1, 2, 3, 4, 5, 1])
  t.same(mv.batcher.executed, { inline: 1, worker: 1 }, 'a 100k-long request runs on a worker')

  t.equal((await infer(2)).status, 200)
  t.same(mv.batcher.executed, { inline: 2, worker: 1 }, 'small requests still run inline afterwards')
})
