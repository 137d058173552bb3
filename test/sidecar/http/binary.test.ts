/**
 * Triton's binary tensor extension and classification extension, by hand: requests
 * built byte by byte, responses split at Inference-Header-Content-Length and decoded.
 */
import t from 'tap'
import type { Running } from '../../fixtures/sidecar.js'
import { exampleModel, fixtureModel, repositorySidecar } from '../../fixtures/repository.js'

let s: Running
t.before(async () => {
  s = await repositorySidecar(t, { iris: exampleModel('iris'), add: fixtureModel('add'), 'named-classes': fixtureModel('named-classes') })
})

const IRIS = '/v2/models/iris/infer'
const ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
const f32 = (v: number[]): Buffer => Buffer.from(new Float32Array(v).buffer)

interface Raw { status: number, headers: Record<string, string | string[] | undefined>, raw: Buffer }

async function send (p: string, json: unknown, tail: Buffer[] = [], headers: Record<string, string> = {}): Promise<Raw> {
  const head = Buffer.from(JSON.stringify(json))
  const binary = tail.length > 0
  const res = await s.client.request({
    method: 'POST',
    path: p,
    body: binary ? Buffer.concat([head, ...tail]) : head,
    headers: binary
      ? { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length), ...headers }
      : { 'content-type': 'application/json', ...headers }
  })
  return { status: res.statusCode, headers: res.headers, raw: Buffer.from(await res.body.arrayBuffer()) }
}

/** Splits a response per the extension; JSON-only responses come back with no tensors. */
function split (res: Raw): { header: any, tensors: Map<string, Buffer> } {
  const hl = res.headers['inference-header-content-length']
  const n = hl === undefined ? res.raw.length : Number(hl)
  const header = JSON.parse(res.raw.subarray(0, n).toString('utf8'))
  const tensors = new Map<string, Buffer>()
  let off = n
  for (const o of header.outputs ?? []) {
    const size = o.parameters?.binary_data_size
    if (size === undefined) continue
    tensors.set(o.name, res.raw.subarray(off, off + size))
    off += size
  }
  if (off !== res.raw.length) throw new Error(`${res.raw.length - off} bytes not claimed by any output`)
  return { header, tensors }
}

const asF32 = (b: Buffer): number[] => Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)))
const asI64 = (b: Buffer): number[] => Array.from(new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), Number)
function asStrings (b: Buffer): string[] {
  const out: string[] = []
  for (let off = 0; off < b.length;) {
    const len = b.readUInt32LE(off)
    out.push(b.toString('utf8', off + 4, off + 4 + len))
    off += 4 + len
  }
  return out
}

let jsonAnswer: { label: number[], probabilities: number[] }

t.test('JSON answer (the reference)', async t => {
  const res = await send(IRIS, { inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], data: ROWS }] })
  t.equal(res.status, 200)
  t.equal(res.headers['content-type'], 'application/json')
  t.equal(res.headers['inference-header-content-length'], undefined, 'no binary header on a JSON answer')
  const body = JSON.parse(res.raw.toString())
  jsonAnswer = {
    label: body.outputs.find((o: { name: string }) => o.name === 'label').data,
    probabilities: body.outputs.find((o: { name: string }) => o.name === 'probabilities').data
  }
  t.same(jsonAnswer.label, [0, 2, 1], 'setosa, virginica, versicolor')
  t.equal(jsonAnswer.probabilities.length, 9)
})

t.test('binary input, JSON output', async t => {
  const res = await send(IRIS, { inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], parameters: { binary_data_size: 48 } }] }, [f32(ROWS.flat())])
  t.equal(res.status, 200, res.raw.toString().slice(0, 300))
  t.equal(res.headers['content-type'], 'application/json')
  const body = JSON.parse(res.raw.toString())
  t.same(body.outputs.find((o: { name: string }) => o.name === 'label').data, jsonAnswer.label)
  t.same(body.outputs.find((o: { name: string }) => o.name === 'probabilities').data, jsonAnswer.probabilities, 'identical to the JSON request')
})

t.test('binary input, all outputs binary (binary_data_output)', async t => {
  const res = await send(IRIS, {
    id: 'bin-1',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], parameters: { binary_data_size: 48 } }],
    parameters: { binary_data_output: true }
  }, [f32(ROWS.flat())])
  t.equal(res.status, 200)
  t.equal(res.headers['content-type'], 'application/octet-stream')
  const hl = Number(res.headers['inference-header-content-length'])
  t.ok(Number.isInteger(hl) && hl > 0 && hl < res.raw.length, `header length ${hl} within a body of ${res.raw.length}`)
  t.equal(Number(res.headers['content-length']), res.raw.length)
  const { header, tensors } = split(res)
  t.equal(header.id, 'bin-1')
  t.equal(header.model_name, 'iris')
  t.equal(header.model_version, '1')
  const label = header.outputs.find((o: { name: string }) => o.name === 'label')
  const probs = header.outputs.find((o: { name: string }) => o.name === 'probabilities')
  t.same(label, { name: 'label', datatype: 'INT64', shape: [3], parameters: { binary_data_size: 24 } })
  t.same(probs, { name: 'probabilities', datatype: 'FP32', shape: [3, 3], parameters: { binary_data_size: 36 } })
  t.equal(res.raw.length, hl + 24 + 36)
  t.same(asI64(tensors.get('label') as Buffer), jsonAnswer.label)
  t.same(asF32(tensors.get('probabilities') as Buffer), jsonAnswer.probabilities, 'Float32Array decoded from the body equals the JSON answer')
  const sums = [0, 1, 2].map(r => asF32(tensors.get('probabilities') as Buffer).slice(r * 3, r * 3 + 3).reduce((a, b) => a + b, 0))
  for (const sum of sums) t.ok(Math.abs(sum - 1) < 1e-5, `row sums to 1 (${sum})`)
})

t.test('per-output binary_data overrides binary_data_output both ways', async t => {
  const res = await send(IRIS, {
    inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], data: ROWS }],
    parameters: { binary_data_output: true },
    outputs: [{ name: 'probabilities' }, { name: 'label', parameters: { binary_data: false } }]
  })
  t.equal(res.status, 200)
  const { header, tensors } = split(res)
  t.same(header.outputs.map((o: { name: string }) => o.name), ['probabilities', 'label'], 'in the requested order')
  t.same(asF32(tensors.get('probabilities') as Buffer), jsonAnswer.probabilities)
  t.same(header.outputs[1].data, jsonAnswer.label, 'label stays JSON')
  t.equal(tensors.has('label'), false)

  const only = await send(IRIS, {
    inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], data: ROWS }],
    outputs: [{ name: 'label', parameters: { binary_data: true } }]
  })
  t.equal(only.status, 200)
  const o = split(only)
  t.same(o.header.outputs.map((x: { name: string }) => x.name), ['label'], 'only the requested output')
  t.same(asI64(o.tensors.get('label') as Buffer), jsonAnswer.label)
})

t.test('binary input at every byte alignment', async t => {
  // Padding the JSON header by 0..3 bytes puts the tensor at every alignment in the body.
  const x = [1.25, -2, 3.5, 1e6]
  for (const pad of ['', ' ', '  ', '   ']) {
    const json = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: 16 } }], outputs: [{ name: 'y', parameters: { binary_data: true } }] }) + pad
    const head = Buffer.from(json)
    const res = await s.client.request({ method: 'POST', path: '/v2/models/add/versions/1/infer', body: Buffer.concat([head, f32(x)]), headers: { 'inference-header-content-length': String(head.length) } })
    const raw = Buffer.from(await res.body.arrayBuffer())
    t.equal(res.statusCode, 200, `header of ${head.length} bytes`)
    const { tensors } = split({ status: res.statusCode, headers: res.headers, raw })
    t.same(asF32(tensors.get('y') as Buffer), x.map(v => Math.fround(v + 1)), `y = x + 1 with a ${head.length}-byte header`)
  }
})

t.test('a body with the binary header but no binary part is plain JSON', async t => {
  const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], data: ROWS }] }))
  const res = await s.client.request({ method: 'POST', path: IRIS, body: json, headers: { 'inference-header-content-length': String(json.length) } })
  const body = JSON.parse(await res.body.text())
  t.equal(res.statusCode, 200)
  t.same(body.outputs.find((o: { name: string }) => o.name === 'label').data, jsonAnswer.label)
})

// ---- classification -----------------------------------------------------------------

const LABELS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon']
function softmax (x: number[]): number[] {
  const m = Math.max(...x)
  const e = x.map(v => Math.exp(v - m))
  const sum = e.reduce((a, b) => a + b, 0)
  return e.map(v => v / sum)
}

t.test('classification on named-classes: labels, order, top-k', async t => {
  const logits = [[0.5, 3, -1, 2, 1], [4, 0, 0, 0, 5]]
  const res = await send('/v2/models/named-classes/infer', {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 5], data: logits }],
    outputs: [{ name: 'scores', parameters: { classification: 3 } }]
  })
  t.equal(res.status, 200)
  const body = JSON.parse(res.raw.toString())
  const out = body.outputs[0]
  t.equal(out.name, 'scores')
  t.equal(out.datatype, 'BYTES')
  t.same(out.shape, [2, 3])
  t.equal(out.data.length, 6)
  for (const [r, row] of logits.entries()) {
    const p = softmax(row)
    const order = [0, 1, 2, 3, 4].sort((a, b) => (p[b] as number) - (p[a] as number))
    const got = out.data.slice(r * 3, r * 3 + 3) as string[]
    for (const [i, entry] of got.entries()) {
      const m = /^(\d+\.\d{6}):(\d+):(\w+)$/.exec(entry)
      t.ok(m !== null, `row ${r}: '${entry}' is score:index:label`)
      const idx = order[i] as number
      t.equal(Number(m?.[2]), idx, `row ${r} rank ${i}: index ${idx}`)
      t.equal(m?.[3], LABELS[idx], `row ${r} rank ${i}: label ${LABELS[idx]}`)
      t.ok(Math.abs(Number(m?.[1]) - (p[idx] as number)) < 1e-5, `row ${r} rank ${i}: score ${m?.[1]} ≈ ${p[idx]}`)
    }
  }
  t.match(out.data[0], /:1:beta$/, 'highest of row 0 is beta')
  t.match(out.data[3], /:4:epsilon$/, 'highest of row 1 is epsilon')
})

t.test('classification with k larger than the number of classes returns every class', async t => {
  const res = await send('/v2/models/named-classes/infer', {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }],
    outputs: [{ name: 'scores', parameters: { classification: 50 } }]
  })
  t.equal(res.status, 200)
  const out = JSON.parse(res.raw.toString()).outputs[0]
  t.same(out.shape, [1, 5])
  t.same(out.data.map((e: string) => e.split(':').slice(1).join(':')), ['4:epsilon', '3:delta', '2:gamma', '1:beta', '0:alpha'])
  const scores = out.data.map((e: string) => Number(e.split(':')[0]))
  t.same([...scores].sort((a, b) => b - a), scores, 'descending scores')
  t.ok(Math.abs(scores.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-5, 'softmax scores add up to 1')
})

t.test('classification ties keep the lower index first; k = 1', async t => {
  const res = await send('/v2/models/named-classes/infer', {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: [0, 7, 7, 0, 7] }],
    outputs: [{ name: 'scores', parameters: { classification: 1 } }]
  })
  t.equal(res.status, 200)
  const out = JSON.parse(res.raw.toString()).outputs[0]
  t.same(out.shape, [1, 1])
  t.match(out.data[0], /^0\.33\d{4}:1:beta$/)
})

t.test('classification as a binary BYTES output', async t => {
  const res = await send('/v2/models/named-classes/infer', {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 5], parameters: { binary_data_size: 20 } }],
    outputs: [{ name: 'scores', parameters: { classification: 2, binary_data: true } }]
  }, [f32([5, 4, 3, 2, 1])])
  t.equal(res.status, 200)
  const { header, tensors } = split(res)
  t.equal(header.outputs[0].datatype, 'BYTES')
  t.same(header.outputs[0].shape, [1, 2])
  const strings = asStrings(tensors.get('scores') as Buffer)
  t.equal(strings.length, 2)
  t.match(strings[0], /^0\.\d{6}:0:alpha$/)
  t.match(strings[1], /^0\.\d{6}:1:beta$/)
})

t.test('classification on iris uses its labels.txt; a model without labels gives score:index', async t => {
  const iris = await send(IRIS, {
    inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], data: ROWS }],
    outputs: [{ name: 'probabilities', parameters: { classification: 1 } }, { name: 'label' }]
  })
  t.equal(iris.status, 200)
  const body = JSON.parse(iris.raw.toString())
  t.same(body.outputs[0].data.map((e: string) => e.split(':').slice(1).join(':')), ['0:setosa', '2:virginica', '1:versicolor'])
  t.same(body.outputs[1].data, jsonAnswer.label, 'agrees with the label output')
  jsonAnswer.probabilities.forEach((p, i) => { if (i % 3 === jsonAnswer.label[Math.floor(i / 3)]) t.equal(Number(body.outputs[0].data[Math.floor(i / 3)].split(':')[0]), Number(p.toFixed(6))) })

  const add = await send('/v2/models/add/infer', {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [0, 3, 1, 2] }],
    outputs: [{ name: 'y', parameters: { classification: 2 } }]
  })
  t.equal(add.status, 200)
  t.same(JSON.parse(add.raw.toString()).outputs[0].data, ['5.000000:1', '4.000000:3'], 'add v2: y = x + 2, no labels')
})
