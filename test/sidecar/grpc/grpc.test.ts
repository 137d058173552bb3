/**
 * The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), driven with a
 * stock @grpc/grpc-js client built from the shipped oip.proto: health and metadata,
 * inference with raw and typed contents (held-out set within 1e-5, like REST),
 * classification, every datatype, the error statuses, metrics shared with REST, trace
 * context from metadata, Unix sockets and shutdown.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { EXAMPLE_REPO, FIXTURE_REPO, ROOT, metricsText, startSidecar, untilMetrics, type Running } from '../../fixtures/sidecar.js'
import { fixtureModel, repositorySidecar } from '../../fixtures/repository.js'
import { bytesElements, f32, grpcClient, status, type OipGrpcClient } from '../../fixtures/grpc-client.js'
import { listenOnSocket } from '../../../sidecar/sidecar.js'

const heldout = JSON.parse(readFileSync(path.join(ROOT, 'test', 'fixtures', 'models', 'iris-heldout.json'), 'utf8')) as {
  raw_features: number[][], expected_label: number[], expected_probabilities: number[][], labels: string[]
}
const ROW = [6.7, 3.0, 5.2, 2.3] // virginica

let s: Running
let c: OipGrpcClient
t.before(async () => {
  s = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }, { name: 'digits' }], grpc: true })
  c = grpcClient(s.grpcAddress)
})
t.teardown(async () => { c?.close(); await s?.close() })

/** Rejects with a ServiceError; returns it so the test can look at code and details. */
async function failure (p: Promise<unknown>): Promise<{ code: number, details: string, metadata: any }> {
  try {
    await p
  } catch (err) {
    return err as { code: number, details: string, metadata: any }
  }
  throw new Error('the call succeeded')
}

const irisRequest = (rows: number[][], extra: object = {}): object => ({
  model_name: 'iris',
  inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 4] }],
  raw_input_contents: [f32(rows.flat())],
  ...extra
})

t.test('health, server and model metadata', async t => {
  t.same(await c.ServerLive({}), { live: true })
  t.same(await c.ServerReady({}), { ready: true })
  const md = await c.ServerMetadata({})
  t.equal(md.name, 'onnx-sidecar')
  t.ok(md.extensions.includes('classification'))
  t.same(await c.ModelReady({ name: 'iris', version: '' }), { ready: true })
  t.same(await c.ModelReady({ name: 'iris', version: '1' }), { ready: true })
  t.same(await c.ModelReady({ name: 'nope', version: '' }), { ready: false }, 'an unknown model is not ready (not an error), as Triton clients expect')
  t.same(await c.ModelReady({ name: 'iris', version: '7' }), { ready: false })
  const bad = await failure(c.ModelReady({ name: 'iris', version: 'x' }))
  t.equal(bad.code, status.INVALID_ARGUMENT)
  t.match(bad.details, /version 'x' is not a positive integer/)

  const mm = await c.ModelMetadata({ name: 'iris', version: '' })
  t.equal(mm.name, 'iris')
  t.same(mm.versions, ['1'])
  t.equal(mm.platform, 'onnxruntime_onnx')
  t.same(mm.inputs.map((i: any) => [i.name, i.datatype, i.shape]), [['input', 'FP32', ['-1', '4']]])
  t.same(mm.outputs.map((o: any) => o.name).sort(), ['label', 'probabilities'])
  const missing = await failure(c.ModelMetadata({ name: 'nope', version: '' }))
  t.equal(missing.code, status.NOT_FOUND)
  t.match(missing.details, /unknown model 'nope'/)

  const index = await c.RepositoryIndex({ ready: true })
  t.same(index.models.map((m: any) => [m.name, m.version, m.state]).sort(), [['digits', '1', 'READY'], ['iris', '1', 'READY']])

  const unimplemented = await failure(new Promise((resolve, reject) => {
    c.raw.makeUnaryRequest('/inference.GRPCInferenceService/ModelStatistics', (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), (err, res) => (err === null ? resolve(res) : reject(err)))
  }))
  t.equal(unimplemented.code, status.UNIMPLEMENTED, "Triton's other RPCs are UNIMPLEMENTED")
})

t.test('the held-out set over raw contents matches the exporter within 1e-5', async t => {
  // max_batch_size is 32: send the 45 rows as three requests of 15, concurrently.
  const chunks = [0, 15, 30].map(start => heldout.raw_features.slice(start, start + 15))
  const answers = await Promise.all(chunks.map(rows => c.ModelInfer(irisRequest(rows, { id: 'req-7', model_version: '1' }))))
  const labels: number[] = []
  const probs: number[] = []
  for (const res of answers) {
    t.equal(res.model_name, 'iris')
    t.equal(res.model_version, '1')
    t.equal(res.id, 'req-7')
    const byName = Object.fromEntries(res.outputs.map((o: any, i: number) => [o.name, { ...o, raw: new Uint8Array(res.raw_output_contents[i]) }]))
    t.equal(byName.label.datatype, 'INT64')
    t.same(byName.label.shape, ['15'])
    t.same(byName.probabilities.shape, ['15', '3'])
    labels.push(...Array.from(new BigInt64Array(byName.label.raw.buffer), Number))
    probs.push(...new Float32Array(byName.probabilities.raw.buffer))
  }
  t.same(labels, heldout.expected_label)
  let worst = 0
  heldout.expected_probabilities.flat().forEach((p, i) => { worst = Math.max(worst, Math.abs(p - (probs[i] as number))) })
  t.ok(worst <= 1e-5, `probabilities within 1e-5 (worst ${worst})`)
})

t.test('typed contents give the same answer as raw contents and as REST', async t => {
  const typed = await c.ModelInfer({ model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: ROW } }], outputs: [{ name: 'probabilities' }] })
  const raw = await c.ModelInfer(irisRequest([ROW], { outputs: [{ name: 'probabilities' }] }))
  t.same(typed.outputs, [{ name: 'probabilities', datatype: 'FP32', shape: ['1', '3'], parameters: {}, contents: null }])
  t.same(typed.raw_output_contents, raw.raw_output_contents)
  const rest = await s.post('/v2/models/iris/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: ROW }], outputs: [{ name: 'probabilities' }] })
  const buf = typed.raw_output_contents[0] as Buffer
  t.same(Array.from(new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength))), rest.body.outputs[0].data)
})

t.test('classification: an int64 "classification" output parameter returns top-k strings', async t => {
  const res = await c.ModelInfer(irisRequest([ROW, heldout.raw_features[0] as number[]], { outputs: [{ name: 'probabilities', parameters: { classification: { int64_param: 2 } } }] }))
  t.equal(res.outputs[0].datatype, 'BYTES')
  t.same(res.outputs[0].shape, ['2', '2'])
  const entries = bytesElements(res.raw_output_contents[0])
  t.equal(entries.length, 4)
  t.match(entries[0], /^0\.\d{6}:2:virginica$/)
  const want = heldout.expected_label[0] as number
  t.match(entries[2], new RegExp(`:${want}:${heldout.labels[want]}$`))
})

t.test('request timeout parameter and call deadlines', async t => {
  const ok = await c.ModelInfer(irisRequest([ROW], { parameters: { timeout: { int64_param: 10_000_000 } } }), { deadlineMs: 10_000 })
  t.equal(ok.outputs.length, 2, 'a generous deadline changes nothing')
})

t.test('bad requests: the right status and a message naming the field', async t => {
  const cases: Array<[string, object, number, RegExp]> = [
    ['unknown model', { ...irisRequest([ROW]), model_name: 'nope' }, status.NOT_FOUND, /unknown model 'nope'/],
    ['no model name', { ...irisRequest([ROW]), model_name: '' }, status.INVALID_ARGUMENT, /model_name must be a non-empty string/],
    ['unknown version', irisRequest([ROW], { model_version: '9' }), status.NOT_FOUND, /model 'iris' has no version '9'/],
    ['wrong datatype', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP64', shape: [1, 4], contents: { fp64_contents: ROW } }] }, status.INVALID_ARGUMENT, /input 'input': datatype FP64 does not match model datatype FP32/],
    ['contents in the wrong field', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { int_contents: [1, 2, 3, 4] } }] }, status.INVALID_ARGUMENT, /input 'input': datatype FP32 goes in contents\.fp32_contents, not contents\.int_contents/],
    ['two contents fields', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: ROW, fp64_contents: ROW } }] }, status.INVALID_ARGUMENT, /contents has both fp32_contents and fp64_contents/],
    ['no data', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }] }, status.INVALID_ARGUMENT, /input 'input': has no data \(fill contents\.fp32_contents, or raw_input_contents\)/],
    ['too few elements', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3] } }] }, status.INVALID_ARGUMENT, /input 'input': data has 3 elements but shape \[1,4\] needs 4/],
    ['raw too short', { ...irisRequest([ROW]), raw_input_contents: [f32([1, 2, 3])] }, status.INVALID_ARGUMENT, /input 'input': raw_input_contents\[0\] is 12 bytes but shape \[1,4\] of FP32 needs 16/],
    ['raw for some inputs only', { ...irisRequest([ROW]), raw_input_contents: [f32(ROW), f32(ROW)] }, status.INVALID_ARGUMENT, /raw_input_contents has 2 entries but the request has 1 inputs/],
    ['raw and contents', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: ROW } }], raw_input_contents: [f32(ROW)] }, status.INVALID_ARGUMENT, /input 'input': has both contents and raw_input_contents/],
    ['shape mismatch', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 5] }], raw_input_contents: [f32([1, 2, 3, 4, 5])] }, status.INVALID_ARGUMENT, /input 'input': shape \[1,5\] does not match model shape \[-1,4\]/],
    ['negative dimension', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }], raw_input_contents: [f32(ROW)] }, status.INVALID_ARGUMENT, /input 'input': shape must be an array of non-negative integers/],
    ['unknown input', { model_name: 'iris', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: ROW } }] }, status.INVALID_ARGUMENT, /input 'x': model 'iris' has no such input/],
    ['unknown output', irisRequest([ROW], { outputs: [{ name: 'nope' }] }), status.INVALID_ARGUMENT, /output 'nope': model 'iris' has no such output/],
    ['negative classification', irisRequest([ROW], { outputs: [{ name: 'probabilities', parameters: { classification: { int64_param: -1 } } }] }), status.INVALID_ARGUMENT, /output 'probabilities': parameters\.classification must be a positive integer/],
    ['bad timeout', irisRequest([ROW], { parameters: { timeout: { string_param: 'soon' } } }), status.INVALID_ARGUMENT, /parameters\.timeout must be a non-negative integer/],
    ['batch too large', irisRequest(Array.from({ length: 33 }, () => ROW)), status.INVALID_ARGUMENT, /batch of 33 rows exceeds max_batch_size 32/]
  ]
  for (const [what, request, code, message] of cases) {
    const err = await failure(c.ModelInfer(request))
    t.equal(err.code, code, `${what}: status ${status[code]}`)
    t.match(err.details, message, `${what}: message`)
  }
  // Nothing above hurt the server.
  t.equal((await c.ModelInfer(irisRequest([ROW]))).outputs.length, 2)
})

t.test('gRPC calls are counted in the same metrics as REST, under the HTTP-equivalent code', async t => {
  const before = await metricsText(s.metricsUrl)
  const count = (text: string, code: string): number => Number(new RegExp(`onnx_sidecar_inference_requests_total\\{model="iris",version="1",code="${code}"\\} (\\d+)`).exec(text)?.[1] ?? 0)
  await c.ModelInfer(irisRequest([ROW]))
  await failure(c.ModelInfer({ model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }] }))
  const after = await metricsText(s.metricsUrl)
  t.equal(count(after, '200') - count(before, '200'), 1)
  t.equal(count(after, '400') - count(before, '400'), 1)
})

t.test('every datatype round-trips through raw and typed contents', async t => {
  const d = await startSidecar({ repository: FIXTURE_REPO, models: [{ name: 'dtypes' }], grpc: true })
  t.teardown(d.close)
  const dc = grpcClient(d.grpcAddress)
  t.teardown(() => dc.close())
  const cases: Array<[string, string, string, unknown[], Buffer]> = [
    ['fp32', 'FP32', 'fp32_contents', [1.5, -2, 3.25], Buffer.from(new Float32Array([1.5, -2, 3.25]).buffer)],
    ['fp64', 'FP64', 'fp64_contents', [1e-300, -2, 3], Buffer.from(new Float64Array([1e-300, -2, 3]).buffer)],
    ['int8', 'INT8', 'int_contents', [-128, 0, 127], Buffer.from(new Int8Array([-128, 0, 127]).buffer)],
    ['int16', 'INT16', 'int_contents', [-32768, 1, 32767], Buffer.from(new Int16Array([-32768, 1, 32767]).buffer)],
    ['int32', 'INT32', 'int_contents', [-2147483648, 2, 2147483647], Buffer.from(new Int32Array([-2147483648, 2, 2147483647]).buffer)],
    ['int64', 'INT64', 'int64_contents', ['-9223372036854775808', '3', '9223372036854775807'], Buffer.from(new BigInt64Array([-(2n ** 63n), 3n, 2n ** 63n - 1n]).buffer)],
    ['uint8', 'UINT8', 'uint_contents', [0, 1, 255], Buffer.from(new Uint8Array([0, 1, 255]).buffer)],
    ['uint16', 'UINT16', 'uint_contents', [0, 1, 65535], Buffer.from(new Uint16Array([0, 1, 65535]).buffer)],
    ['uint32', 'UINT32', 'uint_contents', [0, 1, 4294967295], Buffer.from(new Uint32Array([0, 1, 4294967295]).buffer)],
    ['uint64', 'UINT64', 'uint64_contents', ['0', '1', '18446744073709551615'], Buffer.from(new BigUint64Array([0n, 1n, 2n ** 64n - 1n]).buffer)],
    ['bool', 'BOOL', 'bool_contents', [true, false, true], Buffer.from([1, 0, 1])],
    ['string', 'BYTES', 'bytes_contents', [Buffer.from('a'), Buffer.from(''), Buffer.from('ünï')], Buffer.concat(['a', '', 'ünï'].map(x => { const b = Buffer.from(x); const n = Buffer.alloc(4); n.writeUInt32LE(b.length); return Buffer.concat([n, b]) }))]
  ]
  // The model takes every input at once: send them all typed, then all raw.
  const typed = await dc.ModelInfer({ model_name: 'dtypes', inputs: cases.map(([suffix, datatype, field, values]) => ({ name: `in_${suffix}`, datatype, shape: [1, 3], contents: { [field]: values } })) })
  const viaRaw = await dc.ModelInfer({ model_name: 'dtypes', inputs: cases.map(([suffix, datatype]) => ({ name: `in_${suffix}`, datatype, shape: [1, 3] })), raw_input_contents: cases.map(x => x[4]) })
  for (const [suffix, datatype, , , raw] of cases) {
    const i = typed.outputs.findIndex((o: any) => o.name === `out_${suffix}`)
    t.same(typed.outputs[i], { name: `out_${suffix}`, datatype, shape: ['1', '3'], parameters: {}, contents: null }, `${datatype}: output tensor`)
    t.same(typed.raw_output_contents[i], raw, `${datatype}: typed contents come back as the same raw bytes`)
    const j = viaRaw.outputs.findIndex((o: any) => o.name === `out_${suffix}`)
    t.same(viaRaw.raw_output_contents[j], raw, `${datatype}: raw contents round-trip`)
  }
  const all = (replace: string, contents: object): object => ({
    model_name: 'dtypes',
    inputs: cases.map(([suffix, datatype, field, values]) => ({ name: `in_${suffix}`, datatype, shape: [1, 3], contents: suffix === replace ? contents : { [field]: values } }))
  })
  const range = await failure(dc.ModelInfer(all('int8', { int_contents: [1, 2, 300] })))
  t.equal(range.code, status.INVALID_ARGUMENT)
  t.match(range.details, /input 'in_int8': data\[2\] = 300 is out of range for INT8/)
  const nul = await failure(dc.ModelInfer(all('string', { bytes_contents: [Buffer.from('a'), Buffer.from('b\u0000c'), Buffer.from('')] })))
  t.equal(nul.code, status.INVALID_ARGUMENT)
  t.match(nul.details, /contains a NUL character/)
})

t.test('over a Unix domain socket, gRPC and REST both answer', async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'onnx-sidecar-grpc-sock-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const u = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }] })
  t.teardown(u.close)
  const files = await listenOnSocket(u.sidecar, dir, { grpc: true })
  t.same(files, { http: path.join(dir, 'http.sock'), grpc: path.join(dir, 'grpc.sock') })
  t.equal((await stat(files.grpc as string)).mode & 0o777, 0o660)
  const uc = grpcClient(`unix:${files.grpc}`)
  t.teardown(() => uc.close())
  const res = await uc.ModelInfer(irisRequest([ROW], { outputs: [{ name: 'label' }] }))
  t.same(Array.from(new BigInt64Array(new Uint8Array(res.raw_output_contents[0]).buffer), Number), [2])
})

t.test('deadlines: a call whose gRPC deadline or timeout parameter passes in the queue is dropped, never computed', async t => {
  const slow = await repositorySidecar(t, { slow: { copy: fixtureModel('slow'), config: 'max_batch_size: 0\nwarmup: false\n' } }, { grpc: true })
  const sc = grpcClient(slow.grpcAddress)
  t.teardown(() => sc.close())
  const x = f32(Array.from({ length: 256 }, (_, i) => (i % 5) / 5))
  const request = (extra: object = {}): object => ({ model_name: 'slow', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 256] }], raw_input_contents: [x], ...extra })
  const batches = (m: string): number => Number(/onnx_sidecar_inference_batch_size_count\{model="slow",version="1"\} (\d+)/.exec(m)?.[1] ?? 0)
  const busy = Promise.all([1, 2, 3].map(async () => await sc.ModelInfer(request())))
  await untilMetrics(slow.metricsUrl, m => batches(m) >= 2, 'two running on the worker, the third queued')
  const byDeadline = await failure(sc.ModelInfer(request(), { deadlineMs: 30 }))
  t.equal(byDeadline.code, status.DEADLINE_EXCEEDED, 'the client sees DEADLINE_EXCEEDED')
  const byParameter = await failure(sc.ModelInfer(request({ parameters: { timeout: { int64_param: 5000 } } })))
  t.equal(byParameter.code, status.DEADLINE_EXCEEDED, "Triton's timeout parameter (µs) is honoured")
  t.match(byParameter.details, /waited longer than its 5 ms deadline/)
  t.equal((await busy).length, 3)
  const dropped = (m: string): number => [...m.matchAll(/onnx_sidecar_inference_requests_total\{model="slow",version="1",code="(?:499|504)"\} (\d+)/g)].reduce((n, x) => n + Number(x[1]), 0)
  const text = await untilMetrics(slow.metricsUrl, m => dropped(m) === 2, 'two dropped calls')
  t.match(text, /onnx_sidecar_inference_requests_total\{model="slow",version="1",code="200"\} 3\n/)
  t.equal(batches(text), 3, 'only the three busy calls were computed')
})

t.test('shutdown: in-flight gRPC calls finish, later ones are refused', async t => {
  const slow = await startSidecar({ repository: FIXTURE_REPO, models: [{ name: 'slow' }], grpc: true })
  const sc = grpcClient(slow.grpcAddress)
  t.teardown(() => sc.close())
  const x = f32(Array.from({ length: 256 }, (_, i) => (i % 7) / 7))
  const inFlight = sc.ModelInfer({ model_name: 'slow', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 256] }], raw_input_contents: [x] })
  await new Promise(resolve => setTimeout(resolve, 30))
  const closing = slow.close()
  const res = await inFlight
  t.equal(res.outputs[0].name, 'y', 'the call that was running got its answer')
  await closing
  const after = await failure(sc.ModelInfer({ model_name: 'slow', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 256] }], raw_input_contents: [x] }, { deadlineMs: 2000 }))
  t.equal(after.code, status.UNAVAILABLE, 'a closed sidecar is UNAVAILABLE')
})
