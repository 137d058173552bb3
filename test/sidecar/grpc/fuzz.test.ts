/**
 * Fuzzing the gRPC request decoder (fast-check, fixed seed; FUZZ_SEED and FUZZ_RUNS
 * override it). Valid ModelInferRequests for five models (typed contents and
 * raw_input_contents, every datatype) must all succeed; the same messages with fields
 * changed, odd shapes and datatypes, raw contents cut short or out of step with the inputs,
 * and flipped, inserted and deleted bytes in the encoded message must never end in
 * INTERNAL or UNKNOWN (gRPC's 500), over a real channel to the in-process server and
 * through `decodeGrpcInferRequest` alone (on the message as the server would decode it).
 */
import t from 'tap'
import fc from 'fast-check'
import path from 'node:path'
import { rm } from 'node:fs/promises'
import protobuf from 'protobufjs'
import { ROOT, startSidecar, type Running } from '../../fixtures/sidecar.js'
import { grpcClient, status, type OipGrpcClient } from '../../fixtures/grpc-client.js'
import {
  byteMutation, fuzz, fuzzRepository, fuzzRuns, fuzzSeed, jsonMutation, mutateBytes, mutateJson, tensorBytes, validRequest,
  type Tensor, type ValidRequest, clientString, CLIENT_STRING_PLACES
} from '../../fixtures/fuzz.js'
import { decodeGrpcInferRequest, type GrpcInferRequest } from '../../../sidecar/grpc/decode.js'
import { SidecarError } from '../../../sidecar/core/errors.js'

const SEED = fuzzSeed(20261112)
const METHOD = '/inference.GRPCInferenceService/ModelInfer'

// The message type the server decodes with, read with the options of sidecar/grpc/server.ts.
const root = new protobuf.Root().loadSync(path.join(ROOT, 'sidecar', 'grpc', 'oip.proto'), { keepCase: true })
const InferRequest = root.lookupType('inference.ModelInferRequest')
const TO_OBJECT = { longs: String, enums: String, defaults: true, arrays: true, objects: false, oneofs: true }
const encode = (msg: object): Buffer => Buffer.from(InferRequest.encode(InferRequest.fromObject(msg)).finish())
const decode = (bytes: Buffer): GrpcInferRequest => InferRequest.toObject(InferRequest.decode(bytes), TO_OBJECT) as unknown as GrpcInferRequest

let s: Running
let c: OipGrpcClient
let repo: string
t.before(async () => {
  repo = await fuzzRepository()
  s = await startSidecar({ repository: repo, grpc: true })
  c = grpcClient(s.grpcAddress)
})
t.teardown(async () => {
  c?.close()
  await s?.close()
  await rm(repo, { recursive: true, force: true })
})

const CONTENTS: Record<string, string> = {
  BOOL: 'bool_contents', INT8: 'int_contents', INT16: 'int_contents', INT32: 'int_contents', INT64: 'int64_contents',
  UINT8: 'uint_contents', UINT16: 'uint_contents', UINT32: 'uint_contents', UINT64: 'uint64_contents',
  FP32: 'fp32_contents', FP64: 'fp64_contents', BYTES: 'bytes_contents'
}
const typed = (t: Tensor): unknown[] => t.datatype === 'BYTES' ? t.values.map(v => Buffer.from(v as string)) : t.values

/** The ModelInferRequest for a valid request: typed contents, or every input in raw_input_contents. */
function grpcMessage (r: ValidRequest, raw: boolean): Record<string, unknown> {
  const msg: Record<string, unknown> = {
    model_name: r.model,
    inputs: r.tensors.map(t => ({
      name: t.name,
      datatype: t.datatype,
      shape: t.shape.map(String),
      ...(raw ? {} : { contents: { [CONTENTS[t.datatype] as string]: typed(t) } })
    }))
  }
  if (raw) msg.raw_input_contents = r.tensors.map(tensorBytes)
  if (r.id !== undefined) msg.id = r.id
  if (r.outputs !== undefined) {
    msg.outputs = r.outputs.map(o => o.classification === undefined
      ? { name: o.name }
      : { name: o.name, parameters: { classification: { int64_param: String(o.classification) } } })
  }
  return msg
}

/** One unary call with the message's bytes as they are; resolves with the status code (0 for OK). */
function call (bytes: Buffer): Promise<{ code: number, details: string }> {
  return new Promise(resolve => {
    c.raw.makeUnaryRequest(METHOD, (b: Buffer) => b, (b: Buffer) => b, bytes, { deadline: Date.now() + 30_000 }, (err: any) => {
      resolve(err === null ? { code: 0, details: '' } : { code: err.code, details: err.details })
    })
  })
}

/** grpc-js's own answer to bytes that are not a ModelInferRequest at all (the sidecar never sees them). */
const UNDECODABLE = 'Error deserializing request'

function notInternal (r: { code: number, details: string }, what: string): void {
  if (r.code === status.INTERNAL && r.details === UNDECODABLE) return
  if (r.code === status.INTERNAL || r.code === status.UNKNOWN) throw new Error(`${what}: code ${r.code} ${r.details}`)
}

const shortText = (v: unknown): string => {
  const x = JSON.stringify(v, (_k, val) => (val?.type === 'Buffer' ? `<${val.data.length} bytes>` : val)) ?? String(v)
  return x.length > 400 ? `${x.slice(0, 400)}…` : x
}

const valid = validRequest.chain(r => fc.record({ r: fc.constant(r), raw: fc.boolean() })).map(({ r, raw }) => grpcMessage(r, raw))

t.test('valid requests (typed and raw contents, every datatype) all succeed', async t => {
  await fuzz('valid gRPC', SEED, fuzzRuns(150), fc.asyncProperty(valid, async msg => {
    const res = await c.ModelInfer(msg).catch((err: any) => { throw new Error(`${String(msg.model_name)}: ${err.code} ${err.details} for ${shortText(msg)}`) })
    if (res.model_name !== msg.model_name) throw new Error(`answered for ${String(res.model_name)}`)
  }))
  t.pass('all answered')
})

t.test('changed fields, odd shapes and datatypes, raw contents out of step: never INTERNAL (over a channel)', async t => {
  const codes = new Map<number, number>()
  await fuzz('mutated fields over gRPC', SEED, fuzzRuns(400), fc.asyncProperty(valid, fc.array(jsonMutation, { minLength: 1, maxLength: 4 }), async (msg, mutations) => {
    const changed = mutateJson(msg, mutations) as Record<string, unknown>
    let bytes: Buffer
    try {
      bytes = encode(typeof changed === 'object' && changed !== null ? changed : {})
    } catch {
      fc.pre(false) // not expressible as a ModelInferRequest at all
      return
    }
    const r = await call(bytes)
    codes.set(r.code, (codes.get(r.code) ?? 0) + 1)
    notInternal(r, shortText(changed))
  }))
  t.ok((codes.get(status.INVALID_ARGUMENT) ?? 0) > 50, `many INVALID_ARGUMENT answers: ${JSON.stringify([...codes])}`)
})

t.test('flipped, inserted and deleted bytes of the encoded message: never INTERNAL from the sidecar', async t => {
  const codes = new Map<string, number>()
  await fuzz('mutated bytes over gRPC', SEED, fuzzRuns(400), fc.asyncProperty(valid, fc.array(byteMutation, { minLength: 1, maxLength: 4 }), async (msg, mutations) => {
    const bytes = mutateBytes(encode(msg), mutations)
    const r = await call(bytes)
    const key = r.details === UNDECODABLE ? 'undecodable' : String(r.code)
    codes.set(key, (codes.get(key) ?? 0) + 1)
    notInternal(r, bytes.toString('hex').slice(0, 400))
  }))
  t.ok([...codes.keys()].some(k => k !== 'undecodable' && k !== '0'), `some reached the sidecar's validation: ${JSON.stringify([...codes])}`)
})

t.test('decodeGrpcInferRequest alone: only SidecarErrors with a 4xx status', async t => {
  const versions = new Map(['iris', 'digits', 'dtypes', 'named-classes', 'fixed'].map(m => [m, s.sidecar.manager.resolve(m)]))
  let decoded = 0
  await fuzz('decodeGrpcInferRequest', SEED, fuzzRuns(2000), fc.property(
    valid,
    fc.array(jsonMutation, { maxLength: 4 }),
    fc.array(byteMutation, { maxLength: 3 }),
    (msg, fieldMutations, byteMutations) => {
      let m: GrpcInferRequest
      try {
        const changed = mutateJson(msg, fieldMutations)
        m = decode(mutateBytes(encode(typeof changed === 'object' && changed !== null ? changed : {}), byteMutations))
      } catch {
        return // the server would not get this far either
      }
      decoded++
      const mv = versions.get(msg.model_name as string)
      try {
        decodeGrpcInferRequest(m, mv as any)
      } catch (err) {
        if (!(err instanceof SidecarError) || err.statusCode >= 500) throw new Error(`${(err as Error).stack ?? String(err)}\nfor ${shortText(m)}`)
      }
    }))
  t.ok(decoded > 400, `most mutated messages decode as protobuf (${decoded})`)
})

t.test('ids, names, parameter keys and model names of any length, in 1- to 4-byte characters: past 256 bytes INVALID_ARGUMENT, every status message bounded', async t => {
  const logsBefore = s.logs.length
  let long = 0
  await fuzz('client strings over gRPC', SEED, fuzzRuns(200), fc.asyncProperty(valid, clientString, fc.constantFrom(...CLIENT_STRING_PLACES, 'model name'), async (msg, str, where) => {
    const m = structuredClone(msg) as { model_name: string, id?: string, parameters?: object, inputs: Array<{ name: string, parameters?: object }>, outputs?: Array<{ name: string, parameters?: object }> }
    const input = m.inputs[0] as { name: string, parameters?: object }
    const output = m.outputs?.[0]
    const param = { bool_param: true }
    if (where === 'id') m.id = str
    else if (where === 'model name') m.model_name = str
    else if (where === 'input name') input.name = str
    else if (where === 'output name') m.outputs = [{ name: str }]
    else if (where === 'input parameter key') input.parameters = { ...input.parameters, [str]: param }
    else if (where === 'output parameter key' && output !== undefined) output.parameters = { ...output.parameters, [str]: param }
    else m.parameters = { ...m.parameters, [str]: param }
    const r = await call(encode(m))
    const what = `${msg.model_name as string} ${where} of ${Buffer.byteLength(str)} bytes (${JSON.stringify(str.slice(0, 4))}…)`
    notInternal(r, what)
    if (Buffer.byteLength(r.details) > 1024) throw new Error(`${what}: ${Buffer.byteLength(r.details)} bytes of status message`)
    // protobufjs writes a lone surrogate as three bytes, as Buffer.byteLength counts it
    if (Buffer.byteLength(str) > 256) {
      long++
      if (r.code !== status.INVALID_ARGUMENT || !/ is longer than 256 bytes: /.test(r.details)) throw new Error(`${what}: ${r.code} ${r.details.slice(0, 300)}`)
    }
  }))
  t.ok(long > 50, `strings past the limit among them (${long})`)
  const lines = s.logs.slice(logsBefore).map(l => Buffer.byteLength(JSON.stringify(l)))
  t.ok(lines.every(n => n <= 4096), `every log line bounded (longest: ${Math.max(0, ...lines)} bytes)`)
})

t.test('after all that the sidecar is ready, answers correctly and logged no unexpected error', async t => {
  t.same(await c.ServerReady({}), { ready: true })
  const res = await c.ModelInfer({ model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', '4'], contents: { fp32_contents: [6.7, 3.0, 5.2, 2.3] } }], outputs: [{ name: 'label' }] })
  t.equal(res.outputs[0].name, 'label')
  t.same(res.raw_output_contents[0], Buffer.from(new BigInt64Array([2n]).buffer), 'virginica')
  t.same(s.logs.filter(l => l.msg === 'unexpected error').map(l => shortText(l.err).slice(0, 300)), [], 'no unexpected error in the log')
})
