/**
 * Fuzzing the REST request decoders (fast-check, fixed seed; FUZZ_SEED and FUZZ_RUNS
 * override it): valid requests for five models (every datatype, JSON and binary, flat and
 * nested data) must all be answered 200; the same requests with fields of the wrong type,
 * odd shapes and datatypes, flipped, inserted and deleted bytes, a wrong
 * Inference-Header-Content-Length or a truncated binary part must never get a 500, through
 * the real HTTP app (in-process, over undici) and through `decodeInferRequest` alone.
 * Deeply nested arrays (10 000 levels) must be a 400 as well.
 */
import t from 'tap'
import fc from 'fast-check'
import { rm } from 'node:fs/promises'
import { startSidecar, type Running } from '../../fixtures/sidecar.js'
import {
  byteMutation, deepArray, deepArrayText, fuzz, fuzzRepository, fuzzRuns, fuzzSeed, jsonMutation, misnested, mutateBytes, mutateJson,
  restBody, restJson, validRequest, type Tensor, clientString, CLIENT_STRING_PLACES
} from '../../fixtures/fuzz.js'
import { decodeInferRequest } from '../../../sidecar/codec/infer-request.js'
import { SidecarError } from '../../../sidecar/core/errors.js'

const SEED = fuzzSeed(20261111)

let s: Running
let repo: string
t.before(async () => {
  repo = await fuzzRepository()
  s = await startSidecar({ repository: repo })
})
t.teardown(async () => {
  await s?.close()
  await rm(repo, { recursive: true, force: true })
})

interface Answer { status: number, text: string, headers: Record<string, unknown> }

async function send (model: string, body: Buffer | string, headers: Record<string, string>): Promise<Answer> {
  const res = await s.client.request({ method: 'POST', path: `/v2/models/${model}/infer`, body, headers })
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers }
}

/** What every answer to a bad request must be: a 4xx or a 503, with a JSON `error` message. */
function refusedCleanly (a: Answer, what: string): void {
  if (a.status === 200) return
  if (a.status >= 500 && a.status !== 503) throw new Error(`${what}: status ${a.status} ${a.text.slice(0, 300)}`)
  let body: unknown
  try { body = JSON.parse(a.text) } catch { throw new Error(`${what}: status ${a.status} with a body that is not JSON: ${a.text.slice(0, 200)}`) }
  if (typeof (body as { error?: unknown }).error !== 'string') throw new Error(`${what}: status ${a.status} without an error message: ${a.text.slice(0, 200)}`)
}

/** The status of the SidecarError `f` throws, else what it threw (or did not). */
function thrownStatus (f: () => unknown): number | string {
  try {
    f()
    return 'no error'
  } catch (err) {
    return err instanceof SidecarError ? err.statusCode : String(err)
  }
}

const shortText = (v: unknown): string => { const x = JSON.stringify(v) ?? String(v); return x.length > 400 ? `${x.slice(0, 400)}…` : x }

t.test('valid requests (every datatype, JSON and binary, flat and nested) are all answered 200', async t => {
  let binaries = 0
  await fuzz('valid', SEED, fuzzRuns(150), fc.asyncProperty(
    validRequest.chain(r => fc.record({ r: fc.constant(r), binary: fc.array(fc.boolean(), { minLength: r.tensors.length, maxLength: r.tensors.length }), nest: fc.boolean() })),
    async ({ r, binary, nest }) => {
      const { json, parts } = restJson(r, binary, nest)
      if (parts.length > 0) binaries++
      const { body, headers } = restBody(json, parts)
      const a = await send(r.model, body, headers)
      if (a.status !== 200) throw new Error(`${r.model}: ${a.status} ${a.text.slice(0, 300)} for ${shortText(json)}`)
      if (a.headers['inference-header-content-length'] === undefined) {
        const out = JSON.parse(a.text)
        if (out.model_name !== r.model) throw new Error(`answered for ${String(out.model_name)}`)
        const wanted = r.outputs?.length ?? out.outputs.length
        if (out.outputs.length !== wanted) throw new Error(`${out.outputs.length} outputs, asked for ${wanted}`)
      }
    }))
  t.ok(binaries > 20, `binary bodies among them (${binaries})`)
})

/** A valid request (as JSON + binary parts) to mutate. */
const base = validRequest.chain(r => fc.record({
  r: fc.constant(r),
  binary: fc.array(fc.boolean(), { minLength: r.tensors.length, maxLength: r.tensors.length }),
  nest: fc.boolean()
})).map(({ r, binary, nest }) => ({ model: r.model, ...restJson(r, binary, nest) }))

t.test('fields of the wrong type, odd shapes and datatypes: a 4xx, never a 500 (HTTP)', async t => {
  const statuses = new Map<number, number>()
  await fuzz('mutated fields over HTTP', SEED, fuzzRuns(500), fc.asyncProperty(base, fc.array(jsonMutation, { minLength: 1, maxLength: 4 }), async (b, mutations) => {
    const json = mutateJson(b.json, mutations)
    const { body, headers } = restBody(json, b.parts)
    const a = await send(b.model, body, headers)
    statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1)
    refusedCleanly(a, `${b.model} ${shortText(json)}`)
  }))
  t.ok((statuses.get(400) ?? 0) > 100, `most are refused with a 400: ${JSON.stringify([...statuses])}`)
})

t.test('flipped, inserted and deleted bytes, wrong Inference-Header-Content-Length, truncated binary parts: never a 500 (HTTP)', async () => {
  const headerLength = fc.oneof(
    fc.integer({ min: -40, max: 40 }).map(d => ({ delta: d })),
    fc.constantFrom('', '-1', '1e3', ' 12', '0x10', '99999999999999999999', 'NaN', '12,13', '+5').map(text => ({ text }))
  )
  await fuzz('mutated bytes over HTTP', SEED, fuzzRuns(500), fc.asyncProperty(
    base,
    fc.array(byteMutation, { maxLength: 4 }),
    fc.option(headerLength, { nil: undefined }),
    fc.option(fc.nat(), { nil: undefined }),
    async (b, mutations, length, truncateBinaryAt) => {
      const { body: original, headers } = restBody(b.json, b.parts)
      const jsonLength = Number(headers['inference-header-content-length'] ?? original.length)
      let body = mutateBytes(original.subarray(0, jsonLength), mutations)
      let binary = original.subarray(jsonLength)
      if (truncateBinaryAt !== undefined && binary.length > 0) binary = binary.subarray(0, truncateBinaryAt % binary.length)
      const sentHeaders = { ...headers }
      if (b.parts.length > 0 || length !== undefined) {
        let h = String(body.length)
        if (length !== undefined) h = 'text' in length ? length.text : String(body.length + length.delta)
        sentHeaders['inference-header-content-length'] = h
      }
      body = Buffer.concat([body, binary])
      const a = await send(b.model, body, sentHeaders)
      refusedCleanly(a, `${b.model} header ${sentHeaders['inference-header-content-length']} body ${shortText(body.toString('latin1'))}`)
    }))
})

t.test('decodeInferRequest alone: only SidecarErrors with a 4xx status', async () => {
  const versions = new Map(['iris', 'digits', 'dtypes', 'named-classes', 'fixed'].map(m => [m, s.sidecar.manager.resolve(m)]))
  await fuzz('decodeInferRequest', SEED, fuzzRuns(3000), fc.property(
    base,
    fc.array(jsonMutation, { maxLength: 5 }),
    fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
    (b, mutations, tail) => {
      const json = mutateJson(b.json, mutations)
      const binary = Buffer.concat([...b.parts, Buffer.from(tail ?? [])])
      try {
        decodeInferRequest(json, binary.length === 0 && tail === undefined ? undefined : binary, versions.get(b.model) as any)
      } catch (err) {
        if (!(err instanceof SidecarError) || err.statusCode >= 500) throw new Error(`${b.model}: ${(err as Error).stack ?? String(err)}\nfor ${shortText(json)}`)
      }
    }))
})

t.test('ragged or wrongly nested data with the right element count: a 400, small bodies (JSON.parse) and large (bounded parser) alike', async t => {
  let large = 0
  await fuzz('misnested data over HTTP', SEED, fuzzRuns(200), fc.asyncProperty(
    validRequest, fc.nat(), fc.constantFrom<'move' | 'wrap' | 'mix'>('move', 'wrap', 'mix'), fc.nat(), fc.boolean(),
    async (r, which, how, at, pad) => {
      const { json } = restJson(r, r.tensors.map(() => false), true)
      const i = which % r.tensors.length
      const inputs = json.inputs as Array<Record<string, unknown>>
      inputs[i] = { ...inputs[i], data: misnested(r.tensors[i] as Tensor, how, at) }
      // an unknown request parameter is ignored: it only takes the body past 64 KiB
      if (pad) json.parameters = { ...(json.parameters as object), pad: 'x'.repeat(70 * 1024) }
      const { body, headers } = restBody(json, [])
      if (body.length > 64 * 1024) large++
      const a = await send(r.model, body, headers)
      if (a.status !== 400 || !/data is (ragged|nested as)/.test(a.text)) throw new Error(`${r.model} ${how}: ${a.status} ${a.text.slice(0, 300)} for ${shortText(inputs[i])}`)
    }))
  t.ok(large > 50, `bodies over 64 KiB among them (${large})`)
})

t.test('ids, names and parameter keys of any length, in 1- to 4-byte characters: past 256 bytes a 400, every answer and log line bounded', async t => {
  const logsBefore = s.logs.length
  let long = 0
  await fuzz('client strings over HTTP', SEED, fuzzRuns(200), fc.asyncProperty(base, clientString, fc.constantFrom(...CLIENT_STRING_PLACES), async (b, str, where) => {
    const json = structuredClone(b.json) as { id?: string, parameters?: object, inputs: Array<{ name: string, parameters?: object }>, outputs?: Array<{ name: string, parameters?: object }> }
    const input = json.inputs[0] as { name: string, parameters?: object }
    const output = json.outputs?.[0]
    if (where === 'id') json.id = str
    else if (where === 'input name') input.name = str
    else if (where === 'output name') json.outputs = [{ name: str }]
    else if (where === 'input parameter key') input.parameters = { ...input.parameters, [str]: 1 }
    else if (where === 'output parameter key' && output !== undefined) output.parameters = { ...output.parameters, [str]: 1 }
    else json.parameters = { ...json.parameters, [str]: 1 }
    const { body, headers } = restBody(json, b.parts)
    const a = await send(b.model, body, headers)
    const what = `${b.model} ${where} of ${Buffer.byteLength(str)} bytes (${JSON.stringify(str.slice(0, 4))}…)`
    refusedCleanly(a, what)
    if (a.status !== 200 && Buffer.byteLength(a.text) > 2048) throw new Error(`${what}: a ${a.status} of ${Buffer.byteLength(a.text)} bytes`)
    if (Buffer.byteLength(str) > 256) {
      long++
      if (a.status !== 400 || !/ is longer than 256 bytes: /.test(a.text)) throw new Error(`${what}: ${a.status} ${a.text.slice(0, 300)}`)
    }
  }))
  t.ok(long > 50, `strings past the limit among them (${long})`)
  const lines = s.logs.slice(logsBefore).map(l => Buffer.byteLength(JSON.stringify(l)))
  t.ok(lines.every(n => n <= 4096), `every log line bounded (longest: ${Math.max(0, ...lines)} bytes)`)
})

t.test('after all that the sidecar is ready, answers correctly and logged no unexpected error', async t => {
  t.equal((await s.get('/v2/health/ready')).status, 200)
  const res = await s.post('/v2/models/iris/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [6.7, 3.0, 5.2, 2.3] }], outputs: [{ name: 'label' }] })
  t.equal(res.status, 200)
  t.same(res.body.outputs[0].data, [2], 'virginica')
  const unexpected = s.logs.filter(l => l.msg === 'unexpected error')
  t.same(unexpected.map(l => shortText(l.err).slice(0, 300)), [], 'no unexpected error in the log')
})

/**
 * 10 000 levels of arrays in each place a client can put an array or object. (The random
 * mutations above nest at most 40 levels: the test's own JSON.stringify overflows first.)
 */
const DEPTH = 10_000
const deepBodies: Array<[string, string]> = [
  ['data', `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":${deepArrayText(DEPTH, '1')}}]}`],
  ['shape', `{"inputs":[{"name":"input","datatype":"FP32","shape":${deepArrayText(DEPTH, '1')},"data":[1,2,3,4]}]}`],
  ['inputs', `{"inputs":${deepArrayText(DEPTH, '1')}}`],
  ['parameters', `{"parameters":{"x":${deepArrayText(DEPTH, '1')}},"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`],
  ['outputs', `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}],"outputs":${deepArrayText(DEPTH, '{}')}}`],
  ['binary_data_size', `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":${deepArrayText(DEPTH, '16')}}}]}`],
  ['objects', `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}],"id":${'{"a":'.repeat(DEPTH)}1${'}'.repeat(DEPTH)}}`]
]

t.test(`arrays nested ${DEPTH} levels deep are a 400, not a 500`, async t => {
  for (const [where, body] of deepBodies) {
    const a = await send('iris', body, { 'content-type': 'application/json' })
    // An unknown request parameter is ignored, so a 200 is fine there; everywhere else it is a 400.
    if (where === 'parameters') t.ok(a.status === 200 || a.status === 400, `${where}: ${a.status} ${a.text.slice(0, 200)}`)
    else t.equal(a.status, 400, `${where}: ${a.status} ${a.text.slice(0, 200)}`)
  }
  const mv = s.sidecar.manager.resolve('iris')
  const deepData = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: deepArray(DEPTH, 1) }] }
  t.equal(thrownStatus(() => decodeInferRequest(deepData, undefined, mv)), 400, 'decodeInferRequest: deep data is a 400')
  const deepShape = { inputs: [{ name: 'input', datatype: 'FP32', shape: deepArray(DEPTH, 1), data: [1, 2, 3, 4] }] }
  t.equal(thrownStatus(() => decodeInferRequest(deepShape, undefined, mv)), 400, 'decodeInferRequest: a deep shape is a 400')
})
