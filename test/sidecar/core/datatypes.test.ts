/**
 * Every OIP datatype round-trips through the `dtypes` fixture model (an Identity per
 * datatype), in JSON and via Triton's binary tensor extension.
 */
import t from 'tap'
import { FIXTURE_REPO, startSidecar, type Running } from '../../fixtures/sidecar.js'

let s: Running
t.before(async () => { s = await startSidecar({ repository: FIXTURE_REPO, models: [{ name: 'dtypes' }] }) })
t.teardown(async () => { await s?.close() })

const PATH = '/v2/models/dtypes/infer'
const KINDS = ['fp32', 'fp64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool', 'string'] as const
type Kind = typeof KINDS[number]
const DATATYPE: Record<Kind, string> = {
  fp32: 'FP32', fp64: 'FP64', int8: 'INT8', int16: 'INT16', int32: 'INT32', int64: 'INT64', uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32', uint64: 'UINT64', bool: 'BOOL', string: 'BYTES'
}

/** Two rows of three values per datatype, chosen at the edges of each range. */
const VALUES: Record<Kind, unknown[]> = {
  fp32: [1.5, -2.25, 0, 0.1, -3.4028234663852886e38, 1.401298464324817e-45],
  fp64: [0.1, 1 / 3, -1e-300, Number.MAX_VALUE, Number.MIN_VALUE, -0.000123456789012345],
  int8: [-128, -1, 0, 1, 100, 127],
  int16: [-32768, -300, 0, 300, 1000, 32767],
  int32: [-2147483648, -70000, 0, 1, 70000, 2147483647],
  int64: ['-9223372036854775808', -9007199254740991, 0, '9007199254740993', 9007199254740991, '9223372036854775807'],
  uint8: [0, 1, 127, 128, 200, 255],
  uint16: [0, 1, 255, 256, 40000, 65535],
  uint32: [0, 1, 65536, 2147483648, 3000000000, 4294967295],
  uint64: [0, 1, '9007199254740993', '9223372036854775808', '12345678901234567890', '18446744073709551615'],
  bool: [true, false, true, false, false, true],
  string: ['plain', '', 'héllo wörld', '日本語テキスト', 'emoji 😀👍🏽', 'quote " backslash \\ newline \n tab \t bell \u0007 del \u007f']
}

/** What the JSON answer holds for each value: floats rounded to float32, 64-bit integers exact. */
function expected (kind: Kind, v: unknown): unknown {
  if (kind === 'fp32') return Math.fround(v as number)
  if (kind === 'int64' || kind === 'uint64') return BigInt(v as string | number)
  return v
}

async function rawPost (body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, raw: Buffer }> {
  const res = await s.client.request({ method: 'POST', path: PATH, body: Buffer.isBuffer(body) ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } })
  const raw = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: res.headers, raw }
}

/** JSON.parse that keeps every integer literal of 16 or more digits exact, as a BigInt. */
function parseExact (text: string): any {
  return JSON.parse(text, function (this: unknown, _key, value, context?: { source: string }) {
    if (typeof value === 'number' && context !== undefined && /^-?\d{16,}$/.test(context.source)) return BigInt(context.source)
    return value
  })
}
const hasSourceContext = ((): boolean => {
  let seen = false
  JSON.parse('1', (_k, v, ctx?: { source: string }) => { seen = ctx?.source === '1'; return v })
  return seen
})()

function toBig (v: unknown): bigint { return BigInt(v as number | bigint) }

t.test('every datatype round-trips in JSON, two rows, flat and nested data', async t => {
  for (const nested of [false, true]) {
    const inputs = KINDS.map(k => ({
      name: `in_${k}`,
      datatype: DATATYPE[k],
      shape: [2, 3],
      data: nested ? [VALUES[k].slice(0, 3), VALUES[k].slice(3)] : VALUES[k]
    }))
    const res = await rawPost({ id: 'rt', inputs })
    t.equal(res.status, 200, res.status === 200 ? 'status 200' : res.raw.toString())
    const text = res.raw.toString('utf8')
    const body = JSON.parse(text)
    t.equal(body.model_name, 'dtypes')
    t.equal(body.model_version, '1')
    t.equal(body.id, 'rt')
    t.same(body.outputs.map((o: { name: string }) => o.name), KINDS.map(k => `out_${k}`), 'outputs in the model\'s order')
    for (const k of KINDS) {
      const out = body.outputs.find((o: { name: string }) => o.name === `out_${k}`)
      t.equal(out.datatype, DATATYPE[k], `${k}: datatype`)
      t.same(out.shape, [2, 3], `${k}: shape`)
      const data = (out.data as unknown[]).flat()
      if (k === 'int64' || k === 'uint64') continue // checked exactly below
      t.strictSame(data, VALUES[k].map(v => expected(k, v)), `${k}: values`)
    }
    // 64-bit integers beyond 2^53 come back exactly: look at the digits in the JSON text.
    for (const k of ['int64', 'uint64'] as const) {
      const m = new RegExp(`"name":"out_${k}","datatype":"${DATATYPE[k]}","shape":\\[2,3\\],"data":\\[([^\\]]*)\\]`).exec(text)
      t.ok(m !== null, `${k}: output found in the text`)
      t.same(m?.[1]?.split(','), VALUES[k].map(v => String(v)), `${k}: exact decimal digits in the JSON text`)
      if (hasSourceContext) {
        const exact = parseExact(text).outputs.find((o: { name: string }) => o.name === `out_${k}`)
        t.same((exact.data as unknown[]).map(toBig), VALUES[k].map(v => BigInt(v as string)), `${k}: exact as BigInt`)
      }
    }
    t.match(text, /"data":\[-9223372036854775808,-9007199254740991,0,9007199254740993,9007199254740991,9223372036854775807\]/, 'INT64 extremes verbatim')
    t.match(text, /18446744073709551615/, 'UINT64 max verbatim')
  }
})

t.test('FP64 keeps full double precision; FP32 rounds to float32', async t => {
  const res = await s.post(PATH, {
    inputs: KINDS.map(k => ({ name: `in_${k}`, datatype: DATATYPE[k], shape: [1, 3], data: k === 'fp64' ? [Math.PI, 0.1 + 0.2, 1e-320] : k === 'fp32' ? [Math.PI, 0.1 + 0.2, 16777217] : VALUES[k].slice(0, 3) })),
    outputs: [{ name: 'out_fp64' }, { name: 'out_fp32' }]
  })
  t.equal(res.status, 200)
  t.same(res.body.outputs.map((o: { name: string }) => o.name), ['out_fp64', 'out_fp32'], 'only the requested outputs, in the requested order')
  t.strictSame(res.body.outputs[0].data, [Math.PI, 0.1 + 0.2, 1e-320])
  t.strictSame(res.body.outputs[1].data, [Math.fround(Math.PI), Math.fround(0.1 + 0.2), 16777216])
})

t.test('BYTES with a NUL character is never silently truncated', async t => {
  // ONNX Runtime's string tensors are C strings: 'a\u0000b' would come back as 'a'.
  // The sidecar must either carry it exactly or refuse it with a 400 naming the input.
  for (const binary of [false, true]) {
    const value = ['a\u0000b', 'ok', '\u0000']
    const inputs: Array<Record<string, unknown>> = KINDS.map(k => ({ name: `in_${k}`, datatype: DATATYPE[k], shape: [1, 3], data: k === 'string' ? value : VALUES[k].slice(0, 3) }))
    let res
    if (binary) {
      const bytes = typedBytes('string', value)
      const input = inputs[KINDS.indexOf('string')] as Record<string, unknown>
      delete input.data
      input.parameters = { binary_data_size: bytes.length }
      const head = Buffer.from(JSON.stringify({ inputs, outputs: [{ name: 'out_string' }] }))
      res = await rawPost(Buffer.concat([head, bytes]), { 'inference-header-content-length': String(head.length) })
    } else {
      res = await rawPost({ inputs, outputs: [{ name: 'out_string' }] })
    }
    const body = JSON.parse(res.raw.toString('utf8'))
    const how = binary ? 'binary' : 'JSON'
    if (res.status === 200) t.strictSame(body.outputs[0].data, value, `${how}: NUL carried exactly`)
    else {
      t.equal(res.status, 400, `${how}: refused as bad input`)
      t.match(body.error, /input 'in_string'/, `${how}: the message names the input`)
    }
  }
})

t.test('BYTES keeps unicode, empty strings and control characters', async t => {
  const strings = ['ß', 'Ελληνικά', '👩‍👩‍👧‍👦', '']
  const res = await s.post(PATH, {
    inputs: KINDS.map(k => ({ name: `in_${k}`, datatype: DATATYPE[k], shape: [4, 3], data: k === 'string' ? [...strings, ...VALUES.string, 'x', 'y'] : [...VALUES[k], ...VALUES[k]] })),
    outputs: [{ name: 'out_string' }, { name: 'out_bool' }]
  })
  t.equal(res.status, 200)
  t.strictSame(res.body.outputs[0].data, [...strings, ...VALUES.string, 'x', 'y'])
  t.same(res.body.outputs[0].shape, [4, 3])
  t.strictSame(res.body.outputs[1].data, [...VALUES.bool, ...VALUES.bool])
})

// ---- binary tensor extension --------------------------------------------------------

function typedBytes (kind: Kind, values: unknown[]): Buffer {
  switch (kind) {
    case 'fp32': return Buffer.from(new Float32Array(values as number[]).buffer)
    case 'fp64': return Buffer.from(new Float64Array(values as number[]).buffer)
    case 'int8': return Buffer.from(new Int8Array(values as number[]).buffer)
    case 'int16': return Buffer.from(new Int16Array(values as number[]).buffer)
    case 'int32': return Buffer.from(new Int32Array(values as number[]).buffer)
    case 'int64': return Buffer.from(new BigInt64Array(values.map(toBig)).buffer)
    case 'uint8': return Buffer.from(new Uint8Array(values as number[]).buffer)
    case 'uint16': return Buffer.from(new Uint16Array(values as number[]).buffer)
    case 'uint32': return Buffer.from(new Uint32Array(values as number[]).buffer)
    case 'uint64': return Buffer.from(new BigUint64Array(values.map(toBig)).buffer)
    case 'bool': return Buffer.from((values as boolean[]).map(b => (b ? 1 : 0)))
    case 'string': return Buffer.concat((values as string[]).flatMap(v => {
      const b = Buffer.from(v, 'utf8')
      const len = Buffer.alloc(4)
      len.writeUInt32LE(b.length)
      return [len, b]
    }))
  }
}

function decodeTyped (kind: Kind, buf: Buffer): unknown[] {
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)
  switch (kind) {
    case 'fp32': return Array.from(new Float32Array(ab))
    case 'fp64': return Array.from(new Float64Array(ab))
    case 'int8': return Array.from(new Int8Array(ab))
    case 'int16': return Array.from(new Int16Array(ab))
    case 'int32': return Array.from(new Int32Array(ab))
    case 'int64': return Array.from(new BigInt64Array(ab))
    case 'uint8': return Array.from(new Uint8Array(ab))
    case 'uint16': return Array.from(new Uint16Array(ab))
    case 'uint32': return Array.from(new Uint32Array(ab))
    case 'uint64': return Array.from(new BigUint64Array(ab))
    case 'bool': return Array.from(new Uint8Array(ab), v => v !== 0)
    case 'string': {
      const out: string[] = []
      for (let off = 0; off < buf.length;) {
        const len = buf.readUInt32LE(off)
        out.push(buf.toString('utf8', off + 4, off + 4 + len))
        off += 4 + len
      }
      return out
    }
  }
}

/** Splits a binary response into its JSON header and a map of output name -> raw bytes. */
function splitBinary (res: { headers: Record<string, string | string[] | undefined>, raw: Buffer }): { header: any, tensors: Map<string, Buffer> } {
  const n = Number(res.headers['inference-header-content-length'])
  const header = JSON.parse(res.raw.subarray(0, n).toString('utf8'))
  const tensors = new Map<string, Buffer>()
  let off = n
  for (const o of header.outputs) {
    const size = o.parameters?.binary_data_size
    if (size === undefined) continue
    tensors.set(o.name, res.raw.subarray(off, off + size))
    off += size
  }
  if (off !== res.raw.length) throw new Error(`binary response has ${res.raw.length - off} unclaimed bytes`)
  return { header, tensors }
}

t.test('every datatype round-trips as binary tensors in both directions', async t => {
  const binaryKinds = new Set<Kind>(['fp32', 'fp64', 'int8', 'int64', 'uint16', 'uint64', 'bool', 'string'])
  const tails: Buffer[] = []
  const inputs = KINDS.map(k => {
    if (!binaryKinds.has(k)) return { name: `in_${k}`, datatype: DATATYPE[k], shape: [2, 3], data: VALUES[k] }
    const bytes = typedBytes(k, VALUES[k])
    tails.push(bytes)
    return { name: `in_${k}`, datatype: DATATYPE[k], shape: [2, 3], parameters: { binary_data_size: bytes.length } }
  })
  const head = Buffer.from(JSON.stringify({ inputs, parameters: { binary_data_output: true } }))
  const res = await rawPost(Buffer.concat([head, ...tails]), { 'inference-header-content-length': String(head.length), 'content-type': 'application/octet-stream' })
  t.equal(res.status, 200, res.status === 200 ? 'status 200' : res.raw.toString())
  t.equal(res.headers['content-type'], 'application/octet-stream')
  const { header, tensors } = splitBinary(res)
  t.equal(header.outputs.length, KINDS.length)
  for (const k of KINDS) {
    const out = header.outputs.find((o: { name: string }) => o.name === `out_${k}`)
    t.equal(out.datatype, DATATYPE[k], `${k}: datatype`)
    t.same(out.shape, [2, 3], `${k}: shape`)
    t.notOk('data' in out, `${k}: no JSON data when binary`)
    const bytes = tensors.get(`out_${k}`) as Buffer
    t.ok(bytes !== undefined, `${k}: binary tensor present`)
    t.strictSame(decodeTyped(k, bytes), VALUES[k].map(v => expected(k, v)), `${k}: values`)
    if (k !== 'string') t.equal(bytes.length, typedBytes(k, VALUES[k]).length, `${k}: byte size`)
  }
})

t.test('binary outputs can be mixed with JSON outputs per output', async t => {
  const res = await rawPost({
    inputs: KINDS.map(k => ({ name: `in_${k}`, datatype: DATATYPE[k], shape: [1, 3], data: VALUES[k].slice(3) })),
    outputs: [{ name: 'out_uint64', parameters: { binary_data: true } }, { name: 'out_string' }, { name: 'out_fp32', parameters: { binary_data: true } }]
  })
  t.equal(res.status, 200)
  const { header, tensors } = splitBinary(res)
  t.same(header.outputs.map((o: { name: string }) => o.name), ['out_uint64', 'out_string', 'out_fp32'])
  t.strictSame(decodeTyped('uint64', tensors.get('out_uint64') as Buffer), VALUES.uint64.slice(3).map(v => BigInt(v as string)))
  t.strictSame(header.outputs[1].data, VALUES.string.slice(3))
  t.strictSame(decodeTyped('fp32', tensors.get('out_fp32') as Buffer), VALUES.fp32.slice(3).map(v => Math.fround(v as number)))
})

t.test('non-finite floats: exact in binary, null in JSON', async t => {
  const special = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]
  const tails = [typedBytes('fp32', special), typedBytes('fp64', special)]
  const inputs = KINDS.map(k => k === 'fp32' || k === 'fp64'
    ? { name: `in_${k}`, datatype: DATATYPE[k], shape: [1, 3], parameters: { binary_data_size: 12 * (k === 'fp32' ? 1 : 2) } }
    : { name: `in_${k}`, datatype: DATATYPE[k], shape: [1, 3], data: VALUES[k].slice(0, 3) })
  const head = Buffer.from(JSON.stringify({ inputs, outputs: [{ name: 'out_fp32' }, { name: 'out_fp64', parameters: { binary_data: true } }] }))
  const res = await rawPost(Buffer.concat([head, ...tails]), { 'inference-header-content-length': String(head.length) })
  t.equal(res.status, 200)
  const { header, tensors } = splitBinary(res)
  t.strictSame(header.outputs[0].data, [null, null, null], 'JSON has no NaN or Infinity')
  t.strictSame(decodeTyped('fp64', tensors.get('out_fp64') as Buffer), special)
})
