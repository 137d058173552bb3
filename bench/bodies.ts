/**
 * Request bodies and targets of `npm run bench`: seeded inputs as JSON, binary tensors and
 * serialized gRPC messages.
 */
import path from 'node:path'
import * as protoLoader from '@grpc/proto-loader'
import type { SyntheticModel } from './onnx-builder.js'
import type { Target } from './load-generator.js'
import { ROOT } from './env.js'

/** Float32 values as a JSON client would print them (shortest round-trip decimal of the float32). */
export function randomInput (n: number, seed: number): Float32Array {
  let a = seed
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0
    out[i] = a / 4294967296
  }
  return out
}

export function jsonBody (m: SyntheticModel, data: Float32Array): Uint8Array {
  return Buffer.from(JSON.stringify({
    inputs: [{ name: m.input.name, shape: [1, ...m.input.shape], datatype: 'FP32', data: Array.from(data) }]
  }))
}

export function binaryBody (m: SyntheticModel, data: Float32Array): { body: Uint8Array, headerLength: number } {
  const header = Buffer.from(JSON.stringify({
    inputs: [{ name: m.input.name, shape: [1, ...m.input.shape], datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }],
    outputs: [{ name: m.output.name, parameters: { binary_data: true } }]
  }))
  return { body: Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]), headerLength: header.byteLength }
}

/** A serialized gRPC ModelInferRequest with raw contents (what tritonclient.grpc sends). */
export function grpcInferMessage (m: SyntheticModel, data: Float32Array): Uint8Array {
  const def = protoLoader.loadSync(path.join(ROOT, 'sidecar', 'grpc', 'oip.proto'), { keepCase: true, longs: String, defaults: true, oneofs: true })
  const method = (def['inference.GRPCInferenceService'] as unknown as Record<string, { requestSerialize: (v: object) => Buffer }>).ModelInfer as { requestSerialize: (v: object) => Buffer }
  return method.requestSerialize({
    model_name: m.name,
    inputs: [{ name: m.input.name, datatype: 'FP32', shape: [1, ...m.input.shape] }],
    raw_input_contents: [Buffer.from(data.buffer, data.byteOffset, data.byteLength)]
  })
}

export const JSON_HEADERS = { 'content-type': 'application/json' }

export function inferTarget (origin: string, model: string, body: Uint8Array, headers: Record<string, string> = JSON_HEADERS): Target {
  return { origin, path: `/v2/models/${model}/infer`, method: 'POST', headers, body }
}

/** GET /v2/health/ready every 5 ms beside the load (the probe of a cell). */
export const health = (origin: string): Target & { intervalMs: number } => ({ origin, path: '/v2/health/ready', method: 'GET', intervalMs: 5 })
