/**
 * Turns a gRPC `ModelInferRequest` (as @grpc/proto-loader decodes it: snake_case keys,
 * 64-bit integers as decimal strings, bytes as Buffers) into the request shape REST
 * uses, so both protocols share one validator (`decodeInferRequest`) and say the same
 * things about the same mistakes. Pure: no model, no I/O.
 *
 * A tensor's data is either in `contents.<type>_contents` or in `raw_input_contents`,
 * which then holds one entry per input in the order of `inputs` (Triton's rule).
 */
import { errors } from '../core/errors.js'
import { decodeInferRequest, type BinarySource, type InferRequest, type MemoryCharge } from '../codec/infer-request.js'
import type { ModelVersion } from '../models/model-version.js'
import { checkParameterKeys } from '../core/client-strings.js'

export interface GrpcParameter {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param'
  bool_param?: boolean
  int64_param?: string
  string_param?: string
  double_param?: number
  uint64_param?: string
}

export type GrpcContents = Partial<Record<ContentsField, unknown[]>>

export interface GrpcInferRequest {
  model_name: string
  model_version: string
  id: string
  parameters: Record<string, GrpcParameter>
  inputs: Array<{ name: string, datatype: string, shape: string[], parameters: Record<string, GrpcParameter>, contents: GrpcContents | null }>
  outputs: Array<{ name: string, parameters: Record<string, GrpcParameter> }>
  raw_input_contents: Buffer[]
}

type ContentsField = 'bool_contents' | 'int_contents' | 'int64_contents' | 'uint_contents' | 'uint64_contents' | 'fp32_contents' | 'fp64_contents' | 'bytes_contents'

/** The typed `contents` field for each datatype (FP16 and BF16 have none: raw only). */
const CONTENTS_FIELD: Record<string, ContentsField | undefined> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents'
}
const RAW_ONLY = new Set(['FP16', 'BF16'])
const FIELDS = ['bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents'] as const

/** The value of a parameter whatever its kind; 64-bit integers become numbers when they are safe, else stay strings. */
function parameterValue (p: GrpcParameter | undefined): unknown {
  const which = p?.parameter_choice
  if (p === undefined || which === undefined) return undefined
  const v = p[which]
  if (which === 'int64_param' || which === 'uint64_param') {
    const n = Number(v)
    return Number.isSafeInteger(n) ? n : v
  }
  return v
}

function parameters (map: Record<string, GrpcParameter> | undefined, what: string): Record<string, unknown> | undefined {
  if (map === undefined) return undefined
  // Checked by the pre-scan already when the message came over the wire; not every caller had one.
  checkParameterKeys(what, map)
  const keys = Object.keys(map)
  if (keys.length === 0) return undefined
  const out: Record<string, unknown> = {}
  for (const k of keys) out[k] = parameterValue(map[k])
  return out
}

/** `raw_input_contents[i]` for input i: the whole entry, whatever size it has. */
class RawContents implements BinarySource {
  #raw: Buffer[]
  constructor (raw: Buffer[]) { this.#raw = raw }
  sizeLabel (index: number): string { return `raw_input_contents[${index}]` }
  take (_input: string, index: number): Uint8Array { return this.#raw[index] as Buffer }
  finish (): void {}
}

function shapeOf (name: string, shape: readonly string[]): number[] {
  return shape.map(d => {
    const n = Number(d)
    if (!Number.isSafeInteger(n)) throw errors.BAD_INPUT(name, `shape dimension ${d} is not a safe integer`)
    return n
  })
}

function dataOf (name: string, datatype: string, contents: GrpcContents | null): unknown[] | undefined {
  if (contents === null || contents === undefined) return undefined
  const want = CONTENTS_FIELD[datatype]
  let found: ContentsField | undefined
  for (const f of FIELDS) {
    if ((contents[f]?.length ?? 0) === 0) continue
    if (found !== undefined) throw errors.BAD_INPUT(name, `contents has both ${found} and ${f}; use the one field of datatype ${datatype}`)
    found = f
  }
  if (found === undefined) return want === undefined ? undefined : []
  if (found !== want) {
    if (want !== undefined) throw errors.BAD_INPUT(name, `datatype ${datatype} goes in contents.${want}, not contents.${found}`)
    if (RAW_ONLY.has(datatype)) throw errors.BAD_INPUT(name, `datatype ${datatype} has no typed contents field; send it in raw_input_contents`)
    // Not a protocol datatype at all: the shared validator names it.
  }
  const values = contents[found] as unknown[]
  // BYTES elements arrive as Buffers; the tensor holds strings (ONNX Runtime string tensors).
  return found === 'bytes_contents' ? values.map(b => (b as Buffer).toString('utf8')) : values
}

/** The REST-shaped body for `decodeInferRequest`, plus where raw bytes come from. */
function restShaped (msg: GrpcInferRequest): { body: Record<string, unknown>, raw: BinarySource | undefined } {
  const raw = msg.raw_input_contents ?? []
  if (raw.length > 0 && raw.length !== msg.inputs.length) {
    throw errors.BAD_REQUEST(`raw_input_contents has ${raw.length} entries but the request has ${msg.inputs.length} inputs; give one per input, in order, or none`)
  }
  const inputs = msg.inputs.map((t, i) => {
    const name = t.name
    if (name === '') throw errors.BAD_REQUEST(`inputs[${i}].name must be a non-empty string`)
    checkParameterKeys(`inputs[${i}].parameters`, t.parameters)
    const data = dataOf(name, t.datatype, t.contents)
    const input: Record<string, unknown> = { name, datatype: t.datatype, shape: shapeOf(name, t.shape ?? []) }
    if (raw.length > 0) {
      if (data !== undefined && data.length > 0) throw errors.BAD_INPUT(name, 'has both contents and raw_input_contents')
      input.parameters = { binary_data_size: (raw[i] as Buffer).byteLength }
    } else if (data === undefined) {
      const field = CONTENTS_FIELD[t.datatype]
      throw errors.BAD_INPUT(name, field === undefined ? 'has no data (send it in raw_input_contents)' : `has no data (fill contents.${field}, or raw_input_contents)`)
    } else {
      input.data = data
    }
    return input
  })
  const outputs = msg.outputs.length === 0
    ? undefined
    : msg.outputs.map((o, i) => {
      checkParameterKeys(`outputs[${i}].parameters`, o.parameters)
      // Always raw contents in the answer; only `classification` matters here.
      const k = parameterValue(o.parameters?.classification)
      return k === undefined ? { name: o.name } : { name: o.name, parameters: { classification: k } }
    })
  const params = parameters(msg.parameters, 'parameters')
  const body: Record<string, unknown> = { inputs }
  if (msg.id !== '') body.id = msg.id
  if (params !== undefined) {
    // Only Triton's `timeout` (µs) is acted on; binary_data_output means nothing over gRPC.
    body.parameters = params.timeout === undefined ? {} : { timeout: params.timeout }
  }
  if (outputs !== undefined) body.outputs = outputs
  return { body, raw: raw.length > 0 ? new RawContents(raw) : undefined }
}

/** Validates a ModelInferRequest against a model version, with the same rules (and messages) as REST. */
export function decodeGrpcInferRequest (msg: GrpcInferRequest, mv: ModelVersion, memory?: MemoryCharge): InferRequest {
  const { body, raw } = restShaped(msg)
  return decodeInferRequest(body, raw, mv, memory)
}
