/**
 * Decoding an inference request as a unit: a JSON (and binary) body against one model
 * version's inputs and outputs gives the tensors, row count, requested outputs and
 * timeout; every problem is a 400 naming what is wrong; memory is charged per tensor.
 */
import t from 'tap'
import { decodeInferRequest } from '../../../sidecar/codec/infer-request.js'
import type { SidecarError } from '../../../sidecar/core/errors.js'
import { parseInferBody } from '../../../sidecar/http/body.js'
import { fakeModelVersion, spec } from '../../fixtures/fake-model-version.js'
import { MAX_ID_BYTES, MAX_NAME_BYTES } from '../../../sidecar/core/client-strings.js'

const { mv } = fakeModelVersion({ inputs: [spec('x', [-1, 2]), spec('n', [-1, 1], 'INT64')], outputs: [spec('y', [-1, 3]), spec('label', [-1, 1], 'BYTES')], maxBatchSize: 4 })
const x = (rows: number[][]) => ({ name: 'x', datatype: 'FP32', shape: [rows.length, 2], data: rows })
const n = (values: number[]) => ({ name: 'n', datatype: 'INT64', shape: [values.length, 1], data: values })

t.test('a JSON request: typed tensors, rows, every output by default, no timeout', async t => {
  const req = decodeInferRequest({ id: 'a1', inputs: [x([[1, 2], [3, 4]]), n([5, 6])] }, undefined, mv)
  t.equal(req.id, 'a1')
  t.equal(req.rows, 2)
  t.same(req.feeds.x?.dims, [2, 2])
  t.equal(req.feeds.x?.type, 'float32')
  t.same([...(req.feeds.x?.data as Float32Array)], [1, 2, 3, 4], 'nested data flattened row by row')
  t.equal(req.feeds.n?.type, 'int64')
  t.same([...(req.feeds.n?.data as BigInt64Array)], [5n, 6n])
  t.same(req.outputs, [{ name: 'y', binary: false, classification: 0 }, { name: 'label', binary: false, classification: 0 }])
  t.equal(req.timeoutUs, 0)
})

t.test('requested outputs, binary output by default, classification and the timeout parameter', async t => {
  const req = decodeInferRequest({
    parameters: { binary_data_output: true, timeout: 2500 },
    inputs: [x([[1, 2]]), n([1])],
    outputs: [{ name: 'y', parameters: { classification: 2 } }]
  }, undefined, mv)
  t.same(req.outputs, [{ name: 'y', binary: true, classification: 2 }])
  t.equal(req.timeoutUs, 2500)
})

t.test('binary tensor data: read from the bytes after the JSON', async t => {
  const bytes = new Uint8Array(new Float32Array([7, 8]).buffer)
  const req = decodeInferRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], parameters: { binary_data_size: 8 } }, n([1])] }, bytes, mv)
  t.same([...(req.feeds.x?.data as Float32Array)], [7, 8])
  t.throws(() => decodeInferRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], parameters: { binary_data_size: 8 } }, n([1])] }, new Uint8Array(12), mv),
    { code: 'OS_ERR_BAD_BINARY', statusCode: 400 }, 'bytes nobody claims')
})

t.test('every problem is a 400 that names it', async t => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['not an object', [], /request body must be a JSON object/],
    ['no inputs', { inputs: [] }, /inputs must be a non-empty array/],
    ['unknown input', { inputs: [x([[1, 2]]), n([1]), { name: 'z', datatype: 'FP32', shape: [1], data: [1] }] }, /no such input/],
    ['missing input', { inputs: [x([[1, 2]])] }, /'n'.*missing/],
    ['wrong datatype', { inputs: [{ ...x([[1, 2]]), datatype: 'FP64' }, n([1])] }, /does not match model datatype FP32/],
    ['wrong shape', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }, n([1])] }, /does not match model shape/],
    ['element count', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1] }, n([1])] }, /needs 2/],
    ['rows differ', { inputs: [x([[1, 2], [3, 4]]), n([1])] }, /batch size 1 differs/],
    ['too many rows', { inputs: [x([[1, 2], [1, 2], [1, 2], [1, 2], [1, 2]]), n([1, 2, 3, 4, 5])] }, /exceeds max_batch_size 4/],
    ['given twice', { inputs: [x([[1, 2]]), x([[1, 2]]), n([1])] }, /given more than once/],
    ['unknown output', { inputs: [x([[1, 2]]), n([1])], outputs: [{ name: 'q' }] }, /no such output/],
    ['classification of BYTES', { inputs: [x([[1, 2]]), n([1])], outputs: [{ name: 'label', parameters: { classification: 1 } }] }, /classification needs a numeric output/],
    ['bad timeout', { parameters: { timeout: -1 }, inputs: [x([[1, 2]]), n([1])] }, /parameters.timeout/],
    ['bad id', { id: 7, inputs: [x([[1, 2]]), n([1])] }, /id must be a string/]
  ]
  for (const [what, body, message] of cases) {
    t.throws(() => decodeInferRequest(body, undefined, mv), { statusCode: 400, message }, what)
  }
})

t.test('each tensor is charged to the request memory before it is allocated; a refusal stops decoding', async t => {
  const charged: number[] = []
  decodeInferRequest({ inputs: [x([[1, 2], [3, 4]]), n([5, 6])] }, undefined, mv, { charge: bytes => { charged.push(bytes) } })
  t.ok(charged.length >= 2, 'one charge per tensor at least')
  t.ok(charged.reduce((a, b) => a + b, 0) >= 2 * 2 * 4 + 2 * 8, 'at least the tensors\' bytes')
  const full = { charge: () => { throw Object.assign(new Error('busy'), { statusCode: 503 }) } }
  t.throws(() => decodeInferRequest({ inputs: [x([[1, 2]]), n([1])] }, undefined, mv, full), { message: 'busy' })
})

t.test('nested data must nest as the shape (ragged is a 400), the same whichever parser read the body', async t => {
  const { mv: nest } = fakeModelVersion({ inputs: [spec('v', [-1, 4]), spec('c', [-1, -1, 3])], maxBatchSize: 0 })
  const body = (v: unknown, vShape: number[], c: unknown = [1, 2, 3], cShape: number[] = [1, 1, 3]): string =>
    JSON.stringify({ inputs: [{ name: 'v', datatype: 'FP32', shape: vShape, data: v }, { name: 'c', datatype: 'FP32', shape: cShape, data: c }] })
  /** The verdict through JSON.parse (bodies up to 64 KiB) and through the bounded parser (larger ones): they must agree. */
  const verdict = (text: string): string => {
    const answers = [Infinity, 0].map(smallJson => {
      try {
        const req = decodeInferRequest(parseInferBody(Buffer.from(text), undefined, smallJson).json, undefined, nest)
        return `ok ${[...req.feeds.v?.data as Float32Array].join(',')} | ${[...req.feeds.c?.data as Float32Array].join(',')}`
      } catch (err) {
        return `${(err as SidecarError).statusCode} ${(err as Error).message}`
      }
    })
    t.equal(answers[1], answers[0], `both parsers agree on ${text}`)
    return answers[0] as string
  }
  const accepted: Array<[string, string]> = [
    [body([1, 2, 3, 4], [1, 4]), 'flat'],
    [body([[1, 2, 3, 4]], [1, 4]), 'one row'],
    [body([[1, 2, 3, 4], [5, 6, 7, 8]], [2, 4]), 'two rows'],
    [body([], [0, 4]), 'empty, flat'],
    [body([1, 2, 3, 4], [1, 4], [[[1, 2, 3], [4, 5, 6]]], [1, 2, 3]), 'three levels'],
    [body([1, 2, 3, 4], [1, 4], [1, 2, 3, 4, 5, 6], [1, 2, 3]), 'three levels, flat'],
    [body([1, 2, 3, 4], [1, 4], [[], []], [2, 0, 3]), 'empty rows: the dims below an empty array cannot be seen']
  ]
  for (const [text, what] of accepted) t.match(verdict(text), /^ok /, what)
  t.equal(verdict(body([[1, 2, 3, 4], [5, 6, 7, 8]], [2, 4], [[[1, 2, 3], [4, 5, 6]]], [1, 2, 3])), 'ok 1,2,3,4,5,6,7,8 | 1,2,3,4,5,6', 'row-major')

  const refused: Array<[string, RegExp]> = [
    // the example: four values, but no [1,4] shape
    [body([[5.1, 3.5, 1.4], [0.2]], [1, 4]), /^400 input 'v': data is ragged \(arrays at depth 2 have 3 and 1 elements\); nest it as the shape \[1,4\] or send it flat/],
    [body([[1, 2, 3, 4], [5, 6, 7], [8]], [2, 4]), /data is ragged \(arrays at depth 2 have 4 and 3 elements\)/],
    [body([[1, 2, 3, 4], []], [2, 4]), /data is ragged \(arrays at depth 2 have 4 and 0 elements\)/],
    [body([1, [2, 3], 4], [1, 4]), /data is ragged \(it holds values at depth 1 and at depth 2\)/],
    [body([[1, 2, 3, 4], 5, 6, 7, 8], [2, 4]), /data is ragged \(it holds values at depth 1 and at depth 2\)/],
    [body([1, 2, 3, 4], [1, 4], [[[]], [1]], [2, 1, 3]), /input 'c': data is ragged \(it mixes values and arrays at depth 2\)/],
    [body([1, 2, 3, 4], [1, 4], [[[1, 2, 3]], [[4, 5]], [[6]]], [1, 2, 3]), /input 'c': data is ragged/],
    [body([[1, 2], [3, 4]], [1, 4]), /data is nested as \[2,2\] but shape is \[1,4\]/],
    [body([[[1, 2, 3, 4]]], [1, 4]), /data is nested as \[1,1,4\] but shape is \[1,4\]/],
    [body([1, 2, 3, 4], [1, 4], [[1, 2, 3], [4, 5, 6]], [1, 2, 3]), /input 'c': data is nested as \[2,3\] but shape is \[1,2,3\]/]
  ]
  for (const [text, message] of refused) t.match(verdict(text), message, text)
})

t.test('ids, tensor names and parameter keys past their limit: a 400 that shows only their start', async t => {
  const ok = [x([[1, 2]]), n([1])]
  const long = 'é'.repeat(MAX_NAME_BYTES / 2) + 'z'.repeat(1_000_000)
  const cases: Array<[string, unknown, RegExp]> = [
    ['id', { id: long, inputs: ok }, /^id is longer than 256 bytes: 'é+…\(truncated\)'$/],
    ['input name', { inputs: [{ ...x([[1, 2]]), name: long }, n([1])] }, /^inputs\[0\]\.name is longer than 256 bytes/],
    ['output name', { inputs: ok, outputs: [{ name: long }] }, /^outputs\[0\]\.name is longer than 256 bytes/],
    ['request parameter key', { parameters: { [long]: 1 }, inputs: ok }, /^a key of parameters is longer than 256 bytes/],
    ['input parameter key', { inputs: [{ ...x([[1, 2]]), parameters: { [long]: 1 } }, n([1])] }, /^a key of inputs\[0\]\.parameters is longer/],
    ['output parameter key', { inputs: ok, outputs: [{ name: 'y', parameters: { [long]: true } }] }, /^a key of outputs\[0\]\.parameters is longer/]
  ]
  for (const [what, body, message] of cases) {
    const err = t.throws(() => decodeInferRequest(body, undefined, mv), { statusCode: 400, code: 'OS_ERR_BAD_REQUEST', message }, what) as unknown as SidecarError
    t.ok(Buffer.byteLength(err.message) < 200, `${what}: ${Buffer.byteLength(err.message)} bytes of message`)
  }
  // At the limit: accepted as far as length goes (the id is echoed; the name is then unknown).
  t.equal(decodeInferRequest({ id: 'é'.repeat(MAX_ID_BYTES / 2), inputs: ok }, undefined, mv).id, 'é'.repeat(128))
  t.throws(() => decodeInferRequest({ inputs: [{ ...x([[1, 2]]), name: 'é'.repeat(MAX_NAME_BYTES / 2) }, n([1])] }, undefined, mv), { message: /no such input/ })
  t.throws(() => decodeInferRequest({ inputs: [{ ...x([[1, 2]]), name: 'é'.repeat(MAX_NAME_BYTES / 2 + 1) }, n([1])] }, undefined, mv), { message: /longer than 256 bytes/ }, 'one character more: 258 bytes')
})
