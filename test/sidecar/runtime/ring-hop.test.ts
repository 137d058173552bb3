/**
 * Run jobs through the job ring (worker-pool.ts with `hop: 'ring'`): every
 * datatype answers as by message, jobs that do not fit the ring (large, strings) still run
 * by message, errors come back as errors, many jobs in flight each get their own answer,
 * and a worker that dies under a ring job fails it at once.
 */
import t, { type Test } from 'tap'
import path from 'node:path'
import { WorkerPool, WorkerUnavailableError } from '../../../sidecar/runtime/worker-pool.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'
import { memoryLogger, EXAMPLE_REPO, FIXTURE_REPO } from '../../fixtures/sidecar.js'

const file = (name: string): string => path.join(FIXTURE_REPO, name, '1', 'model.onnx')
const f32 = (rows: number, fill: (i: number) => number): WireTensor => ({ type: 'float32', dims: [rows, 4], data: Float32Array.from({ length: rows * 4 }, (_, i) => fill(i)) })

function dtypeFeeds (): Record<string, WireTensor> {
  return {
    in_fp32: { type: 'float32', dims: [1, 3], data: new Float32Array([1.5, -2, 3]) },
    in_fp64: { type: 'float64', dims: [1, 3], data: new Float64Array([1e300, -0.5, 7]) },
    in_int8: { type: 'int8', dims: [1, 3], data: new Int8Array([-128, 0, 127]) },
    in_int16: { type: 'int16', dims: [1, 3], data: new Int16Array([-32768, 1, 32767]) },
    in_int32: { type: 'int32', dims: [1, 3], data: new Int32Array([-2147483648, 2, 2147483647]) },
    in_int64: { type: 'int64', dims: [1, 3], data: new BigInt64Array([-9223372036854775808n, 3n, 9223372036854775807n]) },
    in_uint8: { type: 'uint8', dims: [1, 3], data: new Uint8Array([0, 1, 255]) },
    in_uint16: { type: 'uint16', dims: [1, 3], data: new Uint16Array([0, 1, 65535]) },
    in_uint32: { type: 'uint32', dims: [1, 3], data: new Uint32Array([0, 1, 4294967295]) },
    in_uint64: { type: 'uint64', dims: [1, 3], data: new BigUint64Array([0n, 1n, 18446744073709551615n]) },
    in_bool: { type: 'bool', dims: [1, 3], data: new Uint8Array([1, 0, 1]) },
    in_string: { type: 'string', dims: [1, 3], data: ['a', '', 'ü'] }
  }
}

const bytes = (t: WireTensor): number => (t.data as Float32Array).byteLength
const plain = (tensors: Record<string, WireTensor>): unknown =>
  Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k.replace(/^(in|out)_/, ''), { type: v.type, dims: v.dims, data: Array.from(v.data as ArrayLike<unknown>) }]))

/** Runs `feeds` on a one-worker pool of each hop; returns both answers and whether the first input was transferred. */
async function bothHops (t: Test, model: string, modelFile: string, feeds: () => Record<string, WireTensor>, fetches: string[]): Promise<Array<{ outputs: unknown, transferred: boolean }>> {
  const { logger } = memoryLogger()
  const answers = []
  for (const hop of ['ring', 'message'] as const) {
    const pool = new WorkerPool({ workers: 1, threads: 1, logger, hop })
    try {
      await pool.load(model, modelFile)
      const sent = feeds()
      const outputs = plain((await pool.run(model, sent, fetches)).outputs)
      answers.push({ outputs, transferred: bytes(Object.values(sent)[0] as WireTensor) === 0 })
    } finally {
      await pool.close()
    }
  }
  t.same(answers[0]?.outputs, answers[1]?.outputs, `${model}: the same answer through the ring as by message`)
  return answers
}

t.test('numeric tensors (float32 in; int64 and float32 out) answer through the ring as by message', async t => {
  const iris = path.join(EXAMPLE_REPO, 'iris', '1', 'model.onnx')
  const [ring] = await bothHops(t, 'iris#1', iris, () => ({ input: { type: 'float32', dims: [2, 4], data: new Float32Array([0.2, 0.6, 0.07, 0.04, 0.7, 0.5, 0.7, 0.8]) } }), ['label', 'probabilities'])
  t.equal(ring?.transferred, false, 'the input was copied into the ring, not transferred')
  t.match(ring?.outputs, { label: { type: 'int64', dims: [2] }, probabilities: { type: 'float32', dims: [2, 3] } })
})

t.test('a job with a string tensor goes by message; every datatype answers as sent', async t => {
  const [ring] = await bothHops(t, 'dtypes#1', file('dtypes'), dtypeFeeds, Object.keys(dtypeFeeds()).map(k => k.replace(/^in_/, 'out_')))
  t.equal(ring?.transferred, true, 'by message: the first input was transferred')
  t.same(ring?.outputs, plain(dtypeFeeds()), 'every output equals its input')
})

t.test('a job larger than a ring slot runs by message; many jobs in flight each get their own answer', async t => {
  const { logger } = memoryLogger()
  const pool = new WorkerPool({ workers: 1, threads: 1, logger, hop: 'ring' })
  t.teardown(() => pool.close())
  await pool.load('add#1', file('add'))
  const big = f32(20_000, i => i % 97) // 320 KB: over the 256 KiB slot
  const res = await pool.run('add#1', { x: big }, ['y'])
  t.equal(bytes(big), 0, 'sent by message: the input buffer was transferred')
  t.same(res.outputs.y?.dims, [20_000, 4])
  t.ok((res.outputs.y?.data as Float32Array).every((v, i) => v === (i % 97) + 1), 'every row answered')

  // Two jobs in flight at a time (what the pool keeps on a worker), 100 rounds.
  const answers: number[][] = []
  const sent: WireTensor[] = []
  for (let round = 0; round < 100; round++) {
    const pair = [0, 1].map(k => f32(1, i => (round * 2 + k) * 4 + i))
    sent.push(...pair)
    const outs = await Promise.all(pair.map(async x => await pool.run('add#1', { x }, ['y'])))
    answers.push(...outs.map(o => Array.from(o.outputs.y?.data as Float32Array)))
  }
  t.ok(sent.every(x => bytes(x) === 16), 'the small jobs went through the ring: no input was transferred')
  t.same(answers, answers.map((_, n) => [1, 2, 3, 4].map(v => n * 4 + v)), 'each job got its own answer')
})

t.test('an ONNX Runtime error comes back through the ring as the run failing', async t => {
  const { logger } = memoryLogger()
  const pool = new WorkerPool({ workers: 1, threads: 1, logger, hop: 'ring' })
  t.teardown(() => pool.close())
  await pool.load('add#1', file('add'))
  const x: WireTensor = { type: 'float32', dims: [1, 5], data: new Float32Array(5) }
  await t.rejects(pool.run('add#1', { x }, ['y']), { name: 'WorkerError', message: /dim|shape|index|Got invalid dimensions/i })
  t.equal(bytes(x), 20, 'it went through the ring')
  const ok = await pool.run('add#1', { x: f32(1, i => i) }, ['y'])
  t.same(Array.from(ok.outputs.y?.data as Float32Array), [1, 2, 3, 4], 'the worker runs the next job')
})

t.test('a worker that dies under a ring job fails it at once, and its replacement serves through a new ring', async t => {
  const { logger } = memoryLogger()
  const pool = new WorkerPool({ workers: 1, threads: 1, logger, hop: 'ring' })
  t.teardown(() => pool.close())
  await pool.load('slow#1', file('slow'))
  await pool.load('add#1', file('add'))
  const running = pool.run('slow#1', { x: { type: 'float32', dims: [1, 256], data: new Float32Array(256).fill(0.5) } }, ['y'])
  pool.kill(0)
  await t.rejects(running, WorkerUnavailableError)
  for (;;) {
    if (pool.states[0] === 'ready') break
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  const x = f32(1, i => i)
  const res = await pool.run('add#1', { x }, ['y'])
  t.same(Array.from(res.outputs.y?.data as Float32Array), [1, 2, 3, 4])
  t.equal(bytes(x), 16, 'through the replacement\'s ring')
})
