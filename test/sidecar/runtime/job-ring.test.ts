/**
 * The job ring's layout (job-ring.ts): a job and a result survive the trip through shared
 * memory for every numeric datatype; what does not fit, or holds strings, is refused so
 * the pool sends it by message; results are copied out, so the slot can take the next job.
 */
import t from 'tap'
import { JobRing, SLOTS, Status } from '../../../sidecar/runtime/job-ring.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'

const numeric: Record<string, WireTensor> = {
  f32: { type: 'float32', dims: [1, 3], data: new Float32Array([1.5, -2, 3]) },
  f64: { type: 'float64', dims: [3], data: new Float64Array([1e300, -0, 7]) },
  i8: { type: 'int8', dims: [1, 1], data: new Int8Array([-128]) },
  u16: { type: 'uint16', dims: [2], data: new Uint16Array([65535, 1]) },
  f16: { type: 'float16', dims: [1], data: new Uint16Array([0x3c00]) },
  i64: { type: 'int64', dims: [2], data: new BigInt64Array([-9223372036854775808n, 5n]) },
  u64: { type: 'uint64', dims: [1], data: new BigUint64Array([18446744073709551615n]) },
  b: { type: 'bool', dims: [3], data: new Uint8Array([1, 0, 1]) },
  empty: { type: 'float32', dims: [0, 4], data: new Float32Array(0) }
}

const plain = (tensors: Record<string, WireTensor>): unknown =>
  Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, { type: v.type, dims: v.dims, data: Array.from(v.data as ArrayLike<unknown>) }]))

t.test('a job crosses with every numeric datatype, read in place from shared memory', async t => {
  const ring = new JobRing(4096)
  const worker = new JobRing(ring.buffer) // the worker's view of the same memory
  t.ok(ring.writeJob(0, 42, { key: 'm#1', feeds: numeric, fetches: ['y', 'z'] }))
  const { id, job } = worker.readJob(0)
  t.equal(id, 42)
  t.equal(job.key, 'm#1')
  t.same(job.fetches, ['y', 'z'])
  t.same(plain(job.feeds), plain(numeric))
  for (const tensor of Object.values(job.feeds)) {
    t.ok((tensor.data as Float32Array).buffer instanceof SharedArrayBuffer, `${tensor.type}: a view of the ring, not a copy`)
    t.equal((tensor.data as Float32Array).byteOffset % 8, 0, `${tensor.type}: 8-byte aligned`)
  }
})

t.test('a result crosses back and is copied out of the slot', async t => {
  const ring = new JobRing(4096)
  const worker = new JobRing(ring.buffer)
  t.ok(ring.writeJob(1, 7, { key: 'k', feeds: {}, fetches: [] }))
  t.ok(worker.writeResult(1, { outputs: numeric, computeNs: 1234 }))
  const answer = ring.readResult(1)
  t.equal(answer.id, 7)
  t.equal(answer.status, Status.Ok)
  t.equal(answer.result?.computeNs, 1234)
  t.same(plain(answer.result?.outputs ?? {}), plain(numeric))
  // The slot takes the next job (number 1 + SLOTS): the result read before must not change.
  t.ok(ring.writeJob(1 + SLOTS, 8, { key: 'k', feeds: { x: { type: 'float32', dims: [3], data: new Float32Array([9, 9, 9]) } }, fetches: [] }))
  t.same(Array.from(answer.result?.outputs.f32?.data as Float32Array), [1.5, -2, 3], 'the outputs are copies')
  t.notOk((answer.result?.outputs.f32?.data as Float32Array).buffer instanceof SharedArrayBuffer)
})

t.test('slots are independent: job n uses slot n % SLOTS', async t => {
  const ring = new JobRing(1024)
  const one = { x: { type: 'float32', dims: [1], data: new Float32Array([1]) } }
  const two = { x: { type: 'float32', dims: [1], data: new Float32Array([2]) } }
  t.ok(ring.writeJob(0, 1, { key: 'a', feeds: one, fetches: [] }))
  t.ok(ring.writeJob(1, 2, { key: 'b', feeds: two, fetches: [] }))
  t.same([ring.readJob(0).job.key, Array.from(ring.readJob(0).job.feeds.x?.data as Float32Array)], ['a', [1]])
  t.same([ring.readJob(1).job.key, Array.from(ring.readJob(1).job.feeds.x?.data as Float32Array)], ['b', [2]])
})

t.test('what does not fit, or holds strings, is refused (it goes by message)', async t => {
  const ring = new JobRing(1024)
  const big = { x: { type: 'float32', dims: [256], data: new Float32Array(256) } } // 1024 bytes of data alone
  t.notOk(ring.writeJob(0, 1, { key: 'k', feeds: big, fetches: [] }), 'inputs larger than the slot')
  t.notOk(ring.writeJob(0, 1, { key: 'k'.repeat(2000), feeds: {}, fetches: [] }), 'a header larger than the slot')
  t.notOk(ring.writeJob(0, 1, { key: 'k', feeds: { s: { type: 'string', dims: [1], data: ['a'] } }, fetches: [] }), 'string tensors')
  t.notOk(ring.writeResult(0, { outputs: big, computeNs: 1 }), 'outputs larger than the slot')
  const fits = { x: { type: 'float32', dims: [200], data: new Float32Array(200).fill(3) } }
  t.ok(ring.writeJob(0, 1, { key: 'k', feeds: fits, fetches: [] }), 'what fits is written')
  t.same(Array.from(ring.readJob(0).job.feeds.x?.data as Float32Array), Array.from(fits.x.data))
})

t.test('an error and an answer sent by message', async t => {
  const ring = new JobRing(1024)
  t.ok(ring.writeJob(0, 5, { key: 'k', feeds: {}, fetches: [] }))
  ring.writeError(0, 'model k is not loaded in this worker')
  t.same(ring.readResult(0), { id: 5, status: Status.Error, error: 'model k is not loaded in this worker' })
  ring.writeStatus(0, Status.ViaPort)
  t.same(ring.readResult(0), { id: 5, status: Status.ViaPort })
})

t.test('a tensor of a type the ring does not know is refused when read', async t => {
  const ring = new JobRing(1024)
  t.ok(ring.writeJob(0, 1, { key: 'k', feeds: { x: { type: 'complex64', dims: [1], data: new Float32Array(2) } }, fetches: [] }))
  t.throws(() => ring.readJob(0), /tensor 'x' of type complex64 cannot cross the job ring/)
})
