/**
 * `npm run bench:infer-decode`: one request decoded into an `InferRequest`, in this process
 * with no transport, for REST (`decodeInferRequest` on a parsed JSON body, and on a binary
 * body) and gRPC (`decodeGrpcInferRequest` on a ModelInferRequest with typed contents, and
 * with raw_input_contents). Small requests (the per-request overhead: checks, hops) and a
 * larger one (the per-element work). Median of several rounds, µs per decode.
 *
 * Usage: npm run bench:infer-decode -- [--rounds 9]
 */
import { decodeInferRequest } from '../sidecar/codec/infer-request.js'
import { decodeGrpcInferRequest, type GrpcInferRequest } from '../sidecar/grpc/decode.js'
import { fakeModelVersion, spec } from '../test/fixtures/fake-model-version.js'

const i = process.argv.indexOf('--rounds')
const ROUNDS = i === -1 ? 9 : Number(process.argv[i + 1])

const { mv } = fakeModelVersion({ inputs: [spec('x', [-1, 4]), spec('n', [-1, 1], 'INT64'), spec('s', [-1, 1], 'BYTES')], outputs: [spec('y', [-1, 1])], maxBatchSize: 1024 })

function cases (rows: number): Array<[string, () => unknown]> {
  const xs = Array.from({ length: rows * 4 }, (_, k) => k / 7)
  const ns = Array.from({ length: rows }, (_, k) => k)
  const ss = Array.from({ length: rows }, (_, k) => `s${k}`)
  const rest = { id: 'r1', parameters: { timeout: 1000 }, inputs: [
    { name: 'x', datatype: 'FP32', shape: [rows, 4], data: xs },
    { name: 'n', datatype: 'INT64', shape: [rows, 1], data: ns },
    { name: 's', datatype: 'BYTES', shape: [rows, 1], data: ss }
  ], outputs: [{ name: 'y' }] }
  const xb = Buffer.from(new Float32Array(xs).buffer)
  const nb = Buffer.from(new BigInt64Array(ns.map(BigInt)).buffer)
  const sb = Buffer.concat(ss.flatMap(s => { const l = Buffer.alloc(4); l.writeUInt32LE(Buffer.byteLength(s)); return [l, Buffer.from(s)] }))
  const restBinary = { id: 'r1', inputs: [
    { name: 'x', datatype: 'FP32', shape: [rows, 4], parameters: { binary_data_size: xb.length } },
    { name: 'n', datatype: 'INT64', shape: [rows, 1], parameters: { binary_data_size: nb.length } },
    { name: 's', datatype: 'BYTES', shape: [rows, 1], parameters: { binary_data_size: sb.length } }
  ] }
  const binary = Buffer.concat([xb, nb, sb])
  const p = (v: number) => ({ parameter_choice: 'int64_param' as const, int64_param: String(v) })
  const grpcInput = (name: string, datatype: string, shape: number[], contents: GrpcInferRequest['inputs'][number]['contents']) =>
    ({ name, datatype, shape: shape.map(String), parameters: {}, contents })
  const grpc: GrpcInferRequest = { model_name: 'm', model_version: '', id: 'r1', parameters: { timeout: p(1000) }, inputs: [
    grpcInput('x', 'FP32', [rows, 4], { fp32_contents: xs }),
    grpcInput('n', 'INT64', [rows, 1], { int64_contents: ns.map(String) }),
    grpcInput('s', 'BYTES', [rows, 1], { bytes_contents: ss.map(s => Buffer.from(s)) })
  ], outputs: [{ name: 'y', parameters: {} }], raw_input_contents: [] }
  const grpcRaw: GrpcInferRequest = { ...grpc, inputs: grpc.inputs.map(t => ({ ...t, contents: null })), raw_input_contents: [xb, nb, sb] }
  return [
    [`REST JSON, ${rows} rows`, () => decodeInferRequest(rest, undefined, mv)],
    [`REST binary, ${rows} rows`, () => decodeInferRequest(restBinary, binary, mv)],
    [`gRPC contents, ${rows} rows`, () => decodeGrpcInferRequest(grpc, mv)],
    [`gRPC raw, ${rows} rows`, () => decodeGrpcInferRequest(grpcRaw, mv)]
  ]
}

console.log(`| request | µs per decode (median of ${ROUNDS}) |\n|---|---:|`)
for (const rows of [1, 256]) {
  for (const [what, run] of cases(rows)) {
    const per = rows === 1 ? 20_000 : 500
    for (let k = 0; k < per; k++) run() // warm up
    const times: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = process.hrtime.bigint()
      for (let k = 0; k < per; k++) run()
      times.push(Number(process.hrtime.bigint() - t0) / 1000 / per)
    }
    times.sort((a, b) => a - b)
    console.log(`| ${what} | ${(times[ROUNDS >> 1] as number).toFixed(2)} |`)
  }
}
