import t from 'tap'
import fc from 'fast-check'
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { ByteBudget } from '../../../common/byte-budget.js'
import { memoryBudget, parseMemoryLimit, requestLimits, DEFAULT_MEMORY_BUDGET } from '../../../common/memory-limit.js'
import { SMALL_JSON } from '../../../sidecar/http/body.js'
import { EXAMPLE_REPO, metricsText, startSidecar } from '../../fixtures/sidecar.js'
import { grpcClient, f32, status } from '../../fixtures/grpc-client.js'
import { fuzzRepository, restJson, validRequest } from '../../fixtures/fuzz.js'

const MiB = 2 ** 20

t.test('ByteBudget: reserve, grow, release', async t => {
  const b = new ByteBudget(100)
  const r1 = b.reserve(60)
  t.ok(r1)
  t.equal(b.reserve(50), undefined, 'does not fit')
  const r2 = b.reserve(40)
  t.ok(r2)
  t.equal(b.used, 100)
  t.equal(r2?.grow(41), false, 'cannot grow past the capacity')
  t.equal(r2?.bytes, 40, 'a failed grow keeps what it held')
  r1?.release()
  t.equal(b.used, 40)
  t.equal(r2?.grow(90), true, 'grows once the memory is free')
  r1?.release()
  t.equal(b.used, 90, 'release is idempotent')
  r2?.release()
  t.equal(b.used, 0)
})

t.test('memory budget: cgroup v2, v1, none, flag', async t => {
  t.equal(parseMemoryLimit('max'), undefined)
  t.equal(parseMemoryLimit('536870912'), 536870912)
  t.equal(parseMemoryLimit('9223372036854771712'), undefined, 'cgroup v1 "unlimited"')
  t.equal(parseMemoryLimit('garbage'), undefined)
  const root = await mkdtemp(path.join(os.tmpdir(), 'onnx-sidecar-cgroup-'))
  t.same(memoryBudget(undefined, root), { bytes: DEFAULT_MEMORY_BUDGET, source: 'default' })
  await mkdir(path.join(root, 'memory'))
  await writeFile(path.join(root, 'memory', 'memory.limit_in_bytes'), '268435456\n')
  t.same(memoryBudget(undefined, root), { bytes: 256 * MiB, source: 'cgroup' }, 'v1')
  await writeFile(path.join(root, 'memory.max'), '1073741824\n')
  t.same(memoryBudget(undefined, root), { bytes: 1024 * MiB, source: 'cgroup' }, 'v2 first')
  t.same(memoryBudget(64 * MiB, root), { bytes: 64 * MiB, source: 'flag' })
  t.same(requestLimits(512 * MiB), { bodyLimit: 16 * MiB, requestBytes: 128 * MiB })
  t.same(requestLimits(16 * MiB), { bodyLimit: 1 * MiB, requestBytes: 4 * MiB }, 'floors')
})

const irisBody = (rows: number): string => JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 4], data: new Array(rows * 4).fill(0.5) }] })

t.test('REST and gRPC: 503 while the request memory is held, 413 when a request could never fit, nothing leaks', async t => {
  const s = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }], bodyLimit: 256 * 1024, requestMemory: 2 * MiB, grpc: true })
  t.teardown(() => s.close())
  const grpc = grpcClient(s.grpcAddress)
  t.teardown(() => grpc.close())
  const budget = s.sidecar.requestMemory.budget
  const grpcInfer = (rows: number): Promise<unknown> => grpc.ModelInfer({ model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 4] }], raw_input_contents: [f32(new Array(rows * 4).fill(0.5))] })

  t.equal((await s.post('/v2/models/iris/infer', irisBody(1))).status, 200)
  await grpcInfer(1)

  const held = s.sidecar.requestMemory.open(budget.capacity - 100)
  const busy = await s.post('/v2/models/iris/infer', irisBody(1))
  t.equal(busy.status, 503, 'REST: memory busy')
  t.match(busy.body.error, /request memory; retry later/)
  t.equal(busy.headers['retry-after'], '1')
  const grpcBusy = await grpcInfer(1).then(() => undefined, (err: { code: number }) => err)
  t.equal(grpcBusy?.code, status.UNAVAILABLE, 'gRPC: UNAVAILABLE')
  const scraped = await metricsText(s.metricsUrl)
  t.match(scraped, `onnx_sidecar_request_memory_used_bytes ${budget.capacity - 100}`, 'the held memory shows in /metrics')
  t.match(scraped, `onnx_sidecar_request_memory_limit_bytes ${2 * MiB}`)
  held.release()
  t.equal((await s.post('/v2/models/iris/infer', irisBody(1))).status, 200, 'answers again once the memory is free')

  // Over the bounded parser (> 64 KiB), a body costs its size, not what JSON.parse would build.
  const big = '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[0,0,0,0]}],"pad":"' + 'x'.repeat(200 * 1024) + '"}'
  t.equal((await s.post('/v2/models/iris/infer', big)).status, 200, 'a 200 KiB body fits in 2 MiB of request memory')

  const rows = 20_000 // 80k floats in binary: 320 KiB, over the 256 KiB body limit
  const bin = Buffer.from(new Float32Array(rows * 4).buffer)
  const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 4], parameters: { binary_data_size: bin.length } }] }))
  const r413 = await s.post('/v2/models/iris/infer', Buffer.concat([head, bin]), { 'inference-header-content-length': String(head.length) })
  t.equal(r413.status, 413, 'over the body limit')
  t.match(r413.body.error, /body exceeds the limit/)

  // gRPC: a message whose decoded size exceeds the request memory (packed bools: 8 bytes each decoded).
  const grpc413 = await grpc.ModelInfer({ model_name: 'iris', inputs: [{ name: 'input', datatype: 'BOOL', shape: [1], contents: { bool_contents: new Array(250_000).fill(true) } }] }).then(() => undefined, (err: { code: number, details: string }) => err)
  t.equal(grpc413?.code, status.RESOURCE_EXHAUSTED, 'gRPC: decoded size over the request memory')
  t.match(grpc413?.details, /more than the request memory limit/)

  // REST: 60k empty strings (180 KiB of JSON) would decode to ~4 MiB of JS strings, over the 2 MiB.
  const dtypes = await startSidecar({ repository: path.join(path.dirname(EXAMPLE_REPO), 'test', 'fixtures', 'repo'), models: [{ name: 'dtypes' }], bodyLimit: 256 * 1024, requestMemory: 2 * MiB })
  t.teardown(() => dtypes.close())
  const strings = `{"inputs":[{"name":"in_string","datatype":"BYTES","shape":[20000,3],"data":[${new Array(60_000).fill('""').join(',')}]}]}`
  const restTooLarge = await dtypes.post('/v2/models/dtypes/infer', strings)
  t.equal(restTooLarge.status, 413, 'REST: decoded size over the request memory')
  t.match(restTooLarge.body.error, /request needs about .* MiB of memory to decode, more than the request memory limit of 2.0 MiB/)
  t.equal(dtypes.sidecar.requestMemory.budget.used, 0, 'the refused request holds nothing')

  // Clients that hang up mid-body, and bad requests: every lease is released.
  await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    if (i % 2 === 0) await s.post('/v2/models/iris/infer', '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[1,2,3,"x"]}]}')
    else await s.post('/v2/models/iris/infer', irisBody(8))
  }))
  for (let i = 0; i < 50 && budget.used !== 0; i++) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(budget.used, 0, 'all request memory is released after the answers')
})

t.test('small and large JSON bodies decode alike (JSON.parse path vs bounded parser)', async t => {
  const repo = await fuzzRepository()
  const s = await startSidecar({ repository: repo })
  t.teardown(() => s.close())
  const samples = fc.sample(fc.tuple(validRequest, fc.boolean()), { seed: 20261130, numRuns: 60 })
  let compared = 0
  for (const [req, nest] of samples) {
    const { json } = restJson(req, [], nest)
    const text = JSON.stringify(json)
    // Trailing whitespace is valid JSON and pushes the body over SMALL_JSON, onto the bounded parser.
    const padded = text + ' '.repeat(SMALL_JSON + 1 - text.length > 0 ? SMALL_JSON + 1 - text.length : 0)
    const a = await s.post(`/v2/models/${req.model}/infer`, text)
    const b = await s.post(`/v2/models/${req.model}/infer`, padded)
    t.equal(b.status, a.status, `${req.model}: same status`)
    t.same(b.body, a.body, `${req.model}: same answer`)
    compared++
  }
  t.equal(compared, 60)
})
