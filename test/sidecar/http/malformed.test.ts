/**
 * Table-driven: malformed requests against a running sidecar. Each gets the right 4xx
 * and an `error` that names the problem; afterwards the sidecar still answers a correct
 * request correctly, is ready, and counted the failures in its metrics.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { ROOT, metricsText, startSidecar, type Running } from '../../fixtures/sidecar.js'
import { exampleModel, fixtureModel, repositorySidecar } from '../../fixtures/repository.js'

const heldout = JSON.parse(readFileSync(path.join(ROOT, 'test', 'fixtures', 'models', 'iris-heldout.json'), 'utf8')) as {
  raw_features: number[][]
  expected_label: number[]
  expected_probabilities: number[][]
}

const IRIS = '/v2/models/iris/infer'
const DTYPES = '/v2/models/dtypes/infer'
const row = [5.1, 3.5, 1.4, 0.2]
const irisInput = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'input', datatype: 'FP32', shape: [1, 4], data: row, ...over })
const iris = (over: Record<string, unknown> = {}, body: Record<string, unknown> = {}): Record<string, unknown> => ({ inputs: [irisInput(over)], ...body })

const DTYPE_VALUES: Record<string, [string, unknown[]]> = {
  fp32: ['FP32', [1.5, -2.25, 0]],
  fp64: ['FP64', [0.1, -1e300, 3]],
  int8: ['INT8', [-128, 0, 127]],
  int16: ['INT16', [-32768, 1, 32767]],
  int32: ['INT32', [-2147483648, 2, 2147483647]],
  int64: ['INT64', ['-9223372036854775808', 3, '9223372036854775807']],
  uint8: ['UINT8', [0, 128, 255]],
  uint16: ['UINT16', [0, 1, 65535]],
  uint32: ['UINT32', [0, 1, 4294967295]],
  uint64: ['UINT64', [0, 1, '18446744073709551615']],
  bool: ['BOOL', [true, false, true]],
  string: ['BYTES', ['a', 'b', 'c']]
}
/** A complete, valid `dtypes` request with one input's data (or the whole input) replaced. */
function dtypes (t: string, data: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    inputs: Object.entries(DTYPE_VALUES).map(([k, [dt, d]]) => ({ name: `in_${k}`, datatype: dt, shape: [1, 3], data: k === t ? data : d })),
    ...extra
  }
}

interface Row {
  name: string
  path?: string
  method?: string
  /** An object is JSON-encoded; a string or Buffer is sent as is. */
  body?: unknown
  headers?: Record<string, string>
  status: number
  error: RegExp
}

const binaryBody = (json: unknown, tail: Buffer): { body: Buffer, headers: Record<string, string> } => {
  const head = Buffer.from(JSON.stringify(json))
  return { body: Buffer.concat([head, tail]), headers: { 'inference-header-content-length': String(head.length) } }
}
const f32 = (...v: number[]): Buffer => Buffer.from(new Float32Array(v).buffer)

const rows: Row[] = [
  // The body as a whole
  { name: 'invalid JSON', body: '{"inputs": [', status: 400, error: /request body is not valid JSON/ },
  { name: 'empty body', body: '', status: 400, error: /request body is not valid JSON: the body is empty/ },
  { name: 'body is an array', body: '[1,2,3]', status: 400, error: /request body must be a JSON object/ },
  { name: 'body is a string', body: '"infer please"', status: 400, error: /request body must be a JSON object/ },
  { name: 'body is null', body: 'null', status: 400, error: /request body must be a JSON object/ },
  { name: 'inputs missing', body: {}, status: 400, error: /inputs must be a non-empty array/ },
  { name: 'inputs is an object', body: { inputs: { name: 'input' } }, status: 400, error: /inputs must be a non-empty array/ },
  { name: 'inputs empty', body: { inputs: [] }, status: 400, error: /inputs must be a non-empty array/ },
  { name: 'input is not an object', body: { inputs: [42] }, status: 400, error: /inputs\[0\] must be an object/ },
  { name: 'input without name', body: { inputs: [{ datatype: 'FP32', shape: [1, 4], data: row }] }, status: 400, error: /inputs\[0\]\.name must be a non-empty string/ },
  { name: 'unknown input', body: iris({ name: 'features' }), status: 400, error: /input 'features': model 'iris' has no such input \(inputs: input\)/ },
  { name: 'duplicate input', body: { inputs: [irisInput(), irisInput()] }, status: 400, error: /input 'input': given more than once/ },
  { name: 'missing required input', path: DTYPES, body: { inputs: [{ name: 'in_fp32', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }, status: 400, error: /input 'in_fp64': missing \(model 'dtypes' needs inputs: in_fp32, in_fp64/ },
  // Datatype and shape
  { name: 'unknown datatype string', body: iris({ datatype: 'FLOAT32' }), status: 400, error: /input 'input': datatype "FLOAT32" is not an Open Inference Protocol datatype/ },
  { name: 'datatype missing', body: iris({ datatype: undefined }), status: 400, error: /input 'input': datatype undefined is not an Open Inference Protocol datatype/ },
  { name: 'datatype mismatch', body: iris({ datatype: 'FP64' }), status: 400, error: /input 'input': datatype FP64 does not match model datatype FP32/ },
  { name: 'shape is not an array', body: iris({ shape: '1,4' }), status: 400, error: /input 'input': shape must be an array of non-negative integers, got "1,4"/ },
  { name: 'negative dimension', body: iris({ shape: [-1, 4] }), status: 400, error: /input 'input': shape must be an array of non-negative integers, got \[-1,4\]/ },
  { name: 'fractional dimension', body: iris({ shape: [1.5, 4] }), status: 400, error: /input 'input': shape must be an array of non-negative integers/ },
  { name: 'shape mismatch', body: iris({ shape: [1, 31], data: new Array(31).fill(1) }), status: 400, error: /^input 'input': shape \[1,31\] does not match model shape \[-1,4\]$/ },
  { name: 'rank mismatch', body: iris({ shape: [4] }), status: 400, error: /input 'input': shape \[4\] does not match model shape \[-1,4\]/ },
  { name: 'fixed-shape model given [3,2]', path: '/v2/models/fixed/infer', body: { inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 2], data: [1, 2, 3, 4, 5, 6] }] }, status: 400, error: /input 'x': shape \[3,2\] does not match model shape \[2,2\]/ },
  // Data
  { name: 'no data', body: iris({ data: undefined }), status: 400, error: /input 'input': has no data/ },
  { name: 'data is not an array', body: iris({ data: 'abc' }), status: 400, error: /input 'input': data must be an array/ },
  { name: 'data count mismatch', body: iris({ data: [1, 2, 3] }), status: 400, error: /input 'input': data has 3 elements but shape \[1,4\] needs 4/ },
  { name: 'nested data count mismatch', body: iris({ shape: [2, 4], data: [[1, 2, 3, 4], [5, 6, 7]] }), status: 400, error: /input 'input': data is ragged \(arrays at depth 2 have 4 and 3 elements\)/ },
  { name: 'ragged nested data with the right count', body: iris({ shape: [1, 4], data: [[5.1, 3.5, 1.4], [0.2]] }), status: 400, error: /input 'input': data is ragged \(arrays at depth 2 have 3 and 1 elements\); nest it as the shape \[1,4\] or send it flat/ },
  { name: 'nested data that does not nest as the shape', body: iris({ shape: [1, 4], data: [[5.1, 3.5], [1.4, 0.2]] }), status: 400, error: /input 'input': data is nested as \[2,2\] but shape is \[1,4\]/ },
  { name: 'string in FP32 data', body: iris({ data: [1, 2, 'x', 4] }), status: 400, error: /input 'input': data\[2\] = "x" is not a number \(datatype FP32\)/ },
  { name: 'null in FP32 data', body: iris({ data: [1, null, 3, 4] }), status: 400, error: /input 'input': data\[1\] = null is not a number/ },
  { name: 'INT8 out of range', path: DTYPES, body: dtypes('int8', [1, 300, 2]), status: 400, error: /input 'in_int8': data\[1\] = 300 is out of range for INT8 \(-128\.\.127\)/ },
  { name: 'UINT8 negative', path: DTYPES, body: dtypes('uint8', [-1, 0, 0]), status: 400, error: /input 'in_uint8': data\[0\] = -1 is out of range for UINT8/ },
  { name: 'INT32 non-integer', path: DTYPES, body: dtypes('int32', [1, 2.5, 3]), status: 400, error: /input 'in_int32': data\[1\] = 2\.5 is not an integer \(datatype INT32\)/ },
  {
    name: 'INT64 beyond 2^53 as a JSON number',
    path: DTYPES,
    body: JSON.stringify(dtypes('int64', [0, 0, 0])).replace('"data":[0,0,0]', '"data":[0,9007199254740993,0]'),
    status: 400,
    error: /input 'in_int64': data\[1\] = 9007199254740992 is beyond 2\^53 .*send it as a string/
  },
  { name: 'INT64 string that is not a number', path: DTYPES, body: dtypes('int64', ['12a', 0, 0]), status: 400, error: /input 'in_int64': data\[0\] = "12a" is not an integer \(datatype INT64\)/ },
  { name: 'INT64 string beyond the range', path: DTYPES, body: dtypes('int64', ['9223372036854775808', 0, 0]), status: 400, error: /input 'in_int64': data\[0\] = "9223372036854775808" is out of range for INT64/ },
  { name: 'UINT64 negative string', path: DTYPES, body: dtypes('uint64', ['-1', 0, 0]), status: 400, error: /input 'in_uint64': data\[0\] = "-1" is out of range for UINT64/ },
  { name: 'BOOL given a number', path: DTYPES, body: dtypes('bool', [true, 1, false]), status: 400, error: /input 'in_bool': data\[1\] = 1 is not a boolean \(datatype BOOL\)/ },
  { name: 'BYTES given a number', path: DTYPES, body: dtypes('string', ['a', 'b', 7]), status: 400, error: /input 'in_string': data\[2\] = 7 is not a string \(datatype BYTES\)/ },
  // Batch dimension
  { name: 'batch larger than max_batch_size', body: iris({ shape: [33, 4], data: new Array(33 * 4).fill(1) }), status: 400, error: /input 'input': batch of 33 rows exceeds max_batch_size 32/ },
  { name: 'batch of 0 rows', body: iris({ shape: [0, 4], data: [] }), status: 400, error: /input 'input': batch dimension is 0/ },
  // Binary tensor extension
  { name: 'binary_data_size larger than the binary part', ...binaryBody(iris({ data: undefined, parameters: { binary_data_size: 16 } }), f32(1, 2)), status: 400, error: /binary tensor data: input 'input' needs 16 bytes at offset 0 but the body has only 8 left/ },
  { name: 'binary_data_size disagrees with the shape', ...binaryBody(iris({ shape: [2, 4], data: undefined, parameters: { binary_data_size: 16 } }), f32(1, 2, 3, 4)), status: 400, error: /input 'input': binary_data_size is 16 bytes but shape \[2,4\] of FP32 needs 32/ },
  { name: 'binary_data_size is negative', ...binaryBody(iris({ data: undefined, parameters: { binary_data_size: -16 } }), f32(1, 2, 3, 4)), status: 400, error: /input 'input': parameters\.binary_data_size must be a non-negative integer, got -16/ },
  { name: 'both data and binary_data_size', ...binaryBody(iris({ parameters: { binary_data_size: 16 } }), f32(1, 2, 3, 4)), status: 400, error: /input 'input': has both data and parameters\.binary_data_size/ },
  { name: 'leftover binary bytes', ...binaryBody(iris({ data: undefined, parameters: { binary_data_size: 16 } }), f32(1, 2, 3, 4, 5)), status: 400, error: /binary tensor data: 4 bytes after the last tensor are not claimed by any binary_data_size/ },
  { name: 'Inference-Header-Content-Length larger than the body', body: JSON.stringify(iris()), headers: { 'inference-header-content-length': '99999' }, status: 400, error: /Inference-Header-Content-Length '99999' must be an integer between 0 and the body size/ },
  { name: 'Inference-Header-Content-Length not a number', body: JSON.stringify(iris()), headers: { 'inference-header-content-length': 'abc' }, status: 400, error: /Inference-Header-Content-Length 'abc' must be an integer/ },
  { name: 'input parameters not an object', body: iris({ parameters: [1] }), status: 400, error: /input 'input': parameters must be an object/ },
  // Outputs and request fields
  { name: 'outputs not an array', body: iris({}, { outputs: { name: 'label' } }), status: 400, error: /outputs must be an array/ },
  { name: 'output not an object', body: iris({}, { outputs: ['label'] }), status: 400, error: /outputs\[0\] must be an object/ },
  { name: 'unknown output', body: iris({}, { outputs: [{ name: 'logits' }] }), status: 400, error: /output 'logits': model 'iris' has no such output \(outputs: label, probabilities\)/ },
  { name: 'output requested twice', body: iris({}, { outputs: [{ name: 'label' }, { name: 'label' }] }), status: 400, error: /output 'label': requested twice/ },
  { name: 'binary_data flag not a boolean', body: iris({}, { outputs: [{ name: 'label', parameters: { binary_data: 'yes' } }] }), status: 400, error: /output 'label': parameters\.binary_data must be a boolean, got "yes"/ },
  { name: 'binary_data_output not a boolean', body: iris({}, { parameters: { binary_data_output: 1 } }), status: 400, error: /parameters\.binary_data_output must be a boolean, got 1/ },
  { name: 'classification negative', body: iris({}, { outputs: [{ name: 'probabilities', parameters: { classification: -1 } }] }), status: 400, error: /output 'probabilities': parameters\.classification must be a positive integer, got -1/ },
  { name: 'classification not a number', body: iris({}, { outputs: [{ name: 'probabilities', parameters: { classification: 'top' } }] }), status: 400, error: /output 'probabilities': parameters\.classification must be a positive integer, got "top"/ },
  { name: 'classification of a BYTES output', path: DTYPES, body: dtypes('', [], { outputs: [{ name: 'out_string', parameters: { classification: 1 } }] }), status: 400, error: /output 'out_string': classification needs a numeric output/ },
  { name: 'id not a string', body: iris({}, { id: 17 }), status: 400, error: /id must be a string/ },
  { name: 'parameters not an object', body: iris({}, { parameters: 'fast' }), status: 400, error: /^parameters must be an object$/ },
  { name: 'timeout parameter negative', body: iris({}, { parameters: { timeout: -5 } }), status: 400, error: /parameters\.timeout must be a non-negative integer/ },
  // Routing
  { name: 'unknown model', path: '/v2/models/nope/infer', body: iris(), status: 404, error: /unknown model 'nope'/ },
  { name: 'unknown version', path: '/v2/models/iris/versions/7/infer', body: iris(), status: 404, error: /model 'iris' has no version '7'/ },
  { name: 'version not a number', path: '/v2/models/iris/versions/latest/infer', body: iris(), status: 400, error: /version 'latest' is not a positive integer/ },
  { name: 'version 0', path: '/v2/models/iris/versions/0/infer', body: iris(), status: 400, error: /version '0' is not a positive integer/ },
  { name: 'GET on infer', path: IRIS, method: 'GET', status: 405, error: /GET is not allowed on \/v2\/models\/iris\/infer/ },
  { name: 'POST on model metadata', path: '/v2/models/iris', body: iris(), status: 405, error: /POST is not allowed on \/v2\/models\/iris/ },
  { name: 'unknown route', path: '/v2/models/iris/predict', body: iris(), status: 404, error: /no route for POST \/v2\/models\/iris\/predict/ },
  { name: 'route outside /v2', path: '/v1/models/iris:predict', body: iris(), status: 404, error: /no route for POST/ },
  { name: 'repository index with ready not a boolean', path: '/v2/repository/index', body: { ready: 'yes' }, status: 400, error: /ready must be a boolean/ }
]

let s: Running & { repository: string }

t.before(async () => {
  s = await repositorySidecar(t, { iris: exampleModel('iris'), dtypes: fixtureModel('dtypes'), fixed: fixtureModel('fixed') })
})

t.test('every malformed request gets the right 4xx and names the problem', async t => {
  t.ok(rows.length >= 35, `${rows.length} rows`)
  t.equal(new Set(rows.map(r => r.name)).size, rows.length, 'row names are distinct')
  for (const r of rows) {
    const method = r.method ?? 'POST'
    const body = r.body === undefined ? undefined : typeof r.body === 'string' || Buffer.isBuffer(r.body) ? r.body : JSON.stringify(r.body)
    const res = await s.client.request({ method: method as 'GET', path: r.path ?? IRIS, body, headers: { 'content-type': 'application/json', ...r.headers } })
    const text = await res.body.text()
    let parsed: { error?: unknown } | undefined
    try { parsed = JSON.parse(text) } catch {}
    t.equal(res.statusCode, r.status, `${r.name}: status`)
    t.equal(res.headers['content-type'], 'application/json', `${r.name}: JSON error body`)
    t.type(parsed?.error, 'string', `${r.name}: has an error message`)
    t.match(String(parsed?.error), r.error, `${r.name}: ${String(parsed?.error)}`)
    if (r.status === 405) t.equal(res.headers.allow, method === 'GET' ? 'POST' : 'GET', `${r.name}: Allow header`)
  }
})

t.test('a body over the limit is 413, with or without content-length', async t => {
  const small = await startSidecar({ repository: s.repository, models: [{ name: 'iris' }], bodyLimit: 1024 })
  t.teardown(small.close)
  const big = JSON.stringify(iris({ shape: [32, 4], data: new Array(128).fill(5.123456) }))
  t.ok(big.length > 1024)
  const declared = await small.post(IRIS, big)
  t.equal(declared.status, 413)
  t.match(declared.body.error, /request body exceeds the limit of 1024 bytes/)
  // Chunked: the limit is noticed while reading.
  const res = await small.client.request({ method: 'POST', path: IRIS, body: Readable.from([big.slice(0, 800), big.slice(800)]), headers: { 'content-type': 'application/json' } })
  const text = await res.body.text()
  t.equal(res.statusCode, 413)
  t.match(JSON.parse(text).error, /exceeds the limit of 1024 bytes/)
  // A body under the limit still works.
  const ok = await small.post(IRIS, iris())
  t.equal(ok.status, 200)
})

t.test('after all that the sidecar still answers correctly', async t => {
  const n = 8
  const res = await s.post(IRIS, { id: 'after', inputs: [{ name: 'input', datatype: 'FP32', shape: [n, 4], data: heldout.raw_features.slice(0, n) }] })
  t.equal(res.status, 200)
  t.equal(res.body.id, 'after')
  const label = res.body.outputs.find((o: { name: string }) => o.name === 'label')
  const probs = res.body.outputs.find((o: { name: string }) => o.name === 'probabilities')
  t.same(label.data, heldout.expected_label.slice(0, n))
  t.same(probs.shape, [n, 3])
  const expected = heldout.expected_probabilities.slice(0, n).flat()
  const worst = Math.max(...expected.map((p, i) => Math.abs(p - probs.data[i])))
  t.ok(worst <= 1e-5, `probabilities within 1e-5 (worst ${worst})`)
  const ready = await s.get('/v2/health/ready')
  t.equal(ready.status, 200)
  t.same(ready.body, { ready: true })
  const live = await s.get('/v2/health/live')
  t.equal(live.status, 200)
})

t.test('4xx responses are counted in the request metric', async t => {
  const text = await metricsText(s.metricsUrl)
  const counts = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^onnx_sidecar_inference_requests_total\{([^}]*)\} (\d+)/.exec(line)
    if (m === null) continue
    const labels = Object.fromEntries([...(m[1] as string).matchAll(/(\w+)="([^"]*)"/g)].map(x => [x[1], x[2]]))
    const key = `${labels.model}|${labels.code}`
    counts.set(key, (counts.get(key) ?? 0) + Number(m[2]))
  }
  const expected400 = rows.filter(r => (r.path ?? IRIS) === IRIS && r.status === 400).length
  const expectedDtypes400 = rows.filter(r => r.path === DTYPES && r.status === 400).length
  t.equal(counts.get('iris|400'), expected400 + 2, 'iris 400s (plus the two bad-version requests)')
  t.equal(counts.get('dtypes|400'), expectedDtypes400, 'dtypes 400s')
  t.equal(counts.get('fixed|400'), 1, 'fixed 400')
  t.equal(counts.get('iris|404'), 1, 'unknown version counted under its model')
  t.equal(counts.get('_unknown|404'), 1, 'unknown model counted under a bounded label')
  t.equal(counts.get('iris|200'), 1, 'the one good request')
  t.match(text, /onnx_sidecar_inference_requests_total\{[^}]*code="400"[^}]*\} \d+/)
})
