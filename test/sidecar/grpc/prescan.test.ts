import t from 'tap'
import fc from 'fast-check'
import path from 'node:path'
import * as loader from '@grpc/proto-loader'
import { SidecarError } from '../../../sidecar/core/errors.js'
import { MAX_DIMS, MAX_TENSORS, prescanInferRequest } from '../../../sidecar/grpc/prescan.js'
import { ROOT } from '../../fixtures/sidecar.js'

const definition = loader.loadSync(path.join(ROOT, 'sidecar', 'grpc', 'oip.proto'), { keepCase: true, longs: String, enums: String, defaults: true, arrays: true, objects: false, oneofs: true })
const method = (definition['inference.GRPCInferenceService'] as Record<string, loader.MethodDefinition<object, object>>).ModelInfer as loader.MethodDefinition<object, object>
const encode = (msg: object): Buffer => method.requestSerialize(msg)
const decode = (buf: Buffer): object => method.requestDeserialize(buf)

const valid = {
  model_name: 'iris',
  id: 'q1',
  parameters: { timeout: { int64_param: '1000' } },
  inputs: [
    { name: 'input', datatype: 'FP32', shape: ['2', '4'], parameters: { binary_data_size: { int64_param: '32' } }, contents: { fp32_contents: [1, 2, 3, 4, 5, 6, 7, 8] } },
    { name: 'ids', datatype: 'INT64', shape: ['3'], contents: { int64_contents: ['1', '-2', '9007199254740993'] } },
    { name: 'words', datatype: 'BYTES', shape: ['2'], contents: { bytes_contents: [Buffer.from('a'), Buffer.from('')] } },
    { name: 'flags', datatype: 'BOOL', shape: ['2'], contents: { bool_contents: [true, false] } }
  ],
  outputs: [{ name: 'probabilities', parameters: { classification: { int64_param: '2' } } }],
  raw_input_contents: [Buffer.from([1, 2, 3, 4])]
}

t.test('messages protobufjs writes pass, with a cost of at least their size', async t => {
  const buf = encode(valid)
  const cost = prescanInferRequest(buf)
  t.ok(cost >= buf.length)
  t.ok(cost < buf.length + 20_000, `cost ${cost} is an estimate, not a wild one`)
  t.doesNotThrow(() => prescanInferRequest(encode({ model_name: 'x' })))
})

t.test('amplifying messages cost what they will decode to', async t => {
  const bools = encode({ model_name: 'iris', inputs: [{ name: 'b', datatype: 'BOOL', shape: ['100000'], contents: { bool_contents: new Array(100_000).fill(true) } }] })
  t.ok(prescanInferRequest(bools) >= 100_000 * 8, 'packed bools: a slot each')
  const empties = encode({ model_name: 'iris', inputs: [{ name: 'w', datatype: 'BYTES', shape: ['10000'], contents: { bytes_contents: new Array(10_000).fill(Buffer.alloc(0)) } }] })
  t.ok(prescanInferRequest(empties) >= 10_000 * 128, 'empty bytes_contents: a Buffer view each')
})

t.test('structural limits and malformed bytes are 400s', async t => {
  const many = encode({ model_name: 'iris', inputs: new Array(MAX_TENSORS + 1).fill({}) })
  t.throws(() => prescanInferRequest(many), { statusCode: 400, message: /more than 256 inputs/ })
  const dims = encode({ model_name: 'iris', inputs: [{ name: 'x', shape: new Array(MAX_DIMS + 1).fill('1') }] })
  t.throws(() => prescanInferRequest(dims), { statusCode: 400, message: /more than 32 dimensions/ })
  t.throws(() => prescanInferRequest(Buffer.from([0x0a, 0x05, 0x61])), { statusCode: 400, message: /runs past the end/ })
  t.throws(() => prescanInferRequest(Buffer.from([0x08, 0x01])), { statusCode: 400, message: /model_name has wire type 0/ })
  t.throws(() => prescanInferRequest(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), { statusCode: 400, message: /varint/ })
})

t.test('fuzz: mutated messages are either accepted (and then decode) or refused with a 400', async t => {
  const base = encode(valid)
  let accepted = 0
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.nat(255), fc.constantFrom('set', 'insert', 'delete')), { minLength: 1, maxLength: 4 }), edits => {
    let bytes = Buffer.from(base)
    for (const [at, value, op] of edits) {
      const i = at % Math.max(1, bytes.length)
      if (op === 'set') bytes[i] = value
      else if (op === 'insert') bytes = Buffer.concat([bytes.subarray(0, i), Buffer.from([value]), bytes.subarray(i)])
      else bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)])
    }
    try {
      prescanInferRequest(bytes)
    } catch (err) {
      if (!(err instanceof SidecarError) || err.statusCode !== 400) throw err
      return
    }
    accepted++
    decode(bytes) // what the pre-scan lets through, protobufjs can decode
  }), { seed: Number(process.env.FUZZ_SEED ?? 20261130), numRuns: 4000 })
  t.ok(accepted > 100, `${accepted} mutated messages were still well-formed and decoded`)
})

t.test('strings the sidecar may repeat, past their limit, are refused before they are decoded', async t => {
  const long = 'é'.repeat(20_000) // 40 KB
  const input = valid.inputs[0] as Record<string, unknown>
  const cases: Array<[string, object, RegExp]> = [
    ['model_name', { ...valid, model_name: long }, /^model_name is longer than 256 bytes: 'é+…\(truncated\)'$/],
    ['model_version', { ...valid, model_version: long }, /^model_version is longer than 256 bytes/],
    ['id', { ...valid, id: long }, /^id is longer than 256 bytes/],
    ['input name', { ...valid, inputs: [input, { ...input, name: long }] }, /^inputs\[1\]\.name is longer than 256 bytes/],
    ['output name', { ...valid, outputs: [{ name: long }] }, /^outputs\[0\]\.name is longer than 256 bytes/],
    ['request parameter key', { ...valid, parameters: { [long]: { bool_param: true } } }, /^a key of parameters is longer than 256 bytes/],
    ['input parameter key', { ...valid, inputs: [{ ...input, parameters: { [long]: { bool_param: true } } }] }, /^a key of inputs\[0\]\.parameters is longer/],
    ['output parameter key', { ...valid, outputs: [{ name: 'y', parameters: { [long]: { bool_param: true } } }] }, /^a key of outputs\[0\]\.parameters is longer/]
  ]
  for (const [what, msg, message] of cases) {
    const err = t.throws(() => prescanInferRequest(encode(msg)), { statusCode: 400, code: 'OS_ERR_BAD_REQUEST', message }, what) as unknown as SidecarError
    t.ok(Buffer.byteLength(err.message) < 200, `${what}: ${Buffer.byteLength(err.message)} bytes of message`)
  }
  t.doesNotThrow(() => prescanInferRequest(encode({ ...valid, id: 'é'.repeat(128), model_name: 'x'.repeat(256), outputs: [{ name: '€'.repeat(85) }] })), 'at the limit')
})
