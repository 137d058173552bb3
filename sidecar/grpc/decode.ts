/**
 * Decodes a gRPC `ModelInferRequest` (as @grpc/proto-loader decodes it: snake_case keys,
 * 64-bit integers as decimal strings, bytes as Buffers) straight into the `InferRequest`
 * REST decodes into, with the checks both protocols share (`codec/tensor-checks.ts` for
 * each tensor, `codec/infer-request.ts` for the request), so both say the same things
 * about the same mistakes. Pure: no I/O.
 *
 * A tensor's data is either in `contents.<type>_contents` or in `raw_input_contents`,
 * which then holds one entry per input in the order of `inputs` (Triton's rule). What only
 * gRPC can get wrong (which contents field, contents and raw both, a raw entry per input)
 * is checked first, for every input, then what both protocols check.
 */
import { errors } from '../core/errors.js'
import { addFeed, allOutputs, checkFeeds, checkId, checkInputCount, checkOutputName, checkTimeout, outputRequest, type InferRequest, type OutputRequest } from '../codec/infer-request.js'
import { arrayLeaves, checkInput, tensorFromBytes, tensorFromValues, wireTensor, type MemoryCharge } from '../codec/tensor-checks.js'
import { flat } from '../codec/nested-shape.js'
import type { ModelSignature } from '../models/signature.js'
import type { WireTensor } from '../core/tensor.js'
import { checkParameterKeys } from '../core/client-strings.js'
import { checkShmOutput, sliceOf, tensorFromShm, type RegionSlice } from '../codec/shm-tensors.js'
import type { SharedMemoryRegions } from '../shm/regions.js'

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
    // Not a protocol datatype at all: checkInput (codec/tensor-checks.ts) names it.
  }
  const values = contents[found] as unknown[]
  // BYTES elements arrive as Buffers; the tensor holds strings (ONNX Runtime string tensors).
  return found === 'bytes_contents' ? values.map(b => (b as Buffer).toString('utf8')) : values
}

/** One input as the message carries it, with its data in one place: typed values, raw bytes or a shared memory slice. */
interface GrpcInput {
  name: string
  datatype: string
  shape: number[]
  values: unknown[] | undefined
  raw: Buffer | undefined
  shm?: RegionSlice
}

/** The shared memory parameters of a tensor, as values. */
function shmParameters (p: Record<string, GrpcParameter> | undefined): Record<string, unknown> | undefined {
  if (p?.shared_memory_region === undefined && p?.shared_memory_byte_size === undefined && p?.shared_memory_offset === undefined) return undefined
  return {
    shared_memory_region: parameterValue(p.shared_memory_region),
    shared_memory_byte_size: parameterValue(p.shared_memory_byte_size),
    shared_memory_offset: parameterValue(p.shared_memory_offset)
  }
}

/**
 * The gRPC-only checks of every input, in order: where its data is, and its shape as
 * numbers. Inputs in shared memory take no raw_input_contents entry (Triton's rule): the
 * entries belong, in order, to the other inputs.
 */
function grpcInputs (msg: GrpcInferRequest): GrpcInput[] {
  const raw = msg.raw_input_contents ?? []
  const slices = msg.inputs.map(t => sliceOf('input', t.name, shmParameters(t.parameters)))
  const inMessage = slices.filter(s => s === undefined).length
  if (raw.length > 0 && raw.length !== inMessage) {
    const shm = msg.inputs.length - inMessage
    throw errors.BAD_REQUEST(`raw_input_contents has ${raw.length} entries but the request has ${inMessage} inputs${shm > 0 ? ` not in shared memory (${shm} are)` : ''}; give one per input, in order, or none`)
  }
  let nextRaw = 0
  return msg.inputs.map((t, i) => {
    const name = t.name
    if (name === '') throw errors.BAD_REQUEST(`inputs[${i}].name must be a non-empty string`)
    checkParameterKeys(`inputs[${i}].parameters`, t.parameters)
    const values = dataOf(name, t.datatype, t.contents)
    const shape = shapeOf(name, t.shape ?? [])
    const slice = slices[i]
    if (slice !== undefined) {
      if (values !== undefined && values.length > 0) throw errors.BAD_INPUT(name, 'has both contents and parameters.shared_memory_region')
      return { name, datatype: t.datatype, shape, values: undefined, raw: undefined, shm: slice }
    }
    if (raw.length > 0) {
      if (values !== undefined && values.length > 0) throw errors.BAD_INPUT(name, 'has both contents and raw_input_contents')
      return { name, datatype: t.datatype, shape, values: undefined, raw: raw[nextRaw++] as Buffer }
    }
    if (values === undefined) {
      const field = CONTENTS_FIELD[t.datatype]
      throw errors.BAD_INPUT(name, field === undefined ? 'has no data (send it in raw_input_contents)' : `has no data (fill contents.${field}, or raw_input_contents)`)
    }
    return { name, datatype: t.datatype, shape, values, raw: undefined }
  })
}

/** Validates a ModelInferRequest against a model version, with the same rules (and messages) as REST. */
export function decodeGrpcInferRequest (msg: GrpcInferRequest, mv: ModelSignature, memory?: MemoryCharge, shm?: SharedMemoryRegions): InferRequest {
  const inputs = grpcInputs(msg)
  // Always raw contents in the answer; of an output's parameters only `classification` matters.
  msg.outputs.forEach((o, i) => checkParameterKeys(`outputs[${i}].parameters`, o.parameters))
  // Checked by the pre-scan already when the message came over the wire; not every caller had one.
  if (msg.parameters !== undefined) checkParameterKeys('parameters', msg.parameters)

  const id = checkId(msg.id === '' ? undefined : msg.id)
  // Only Triton's `timeout` (µs) is acted on; binary_data_output means nothing over gRPC.
  const timeoutUs = checkTimeout(parameterValue(msg.parameters?.timeout) ?? 0)
  checkInputCount(inputs.length)
  const feeds: Record<string, WireTensor> = {}
  for (let i = 0; i < inputs.length; i++) {
    const t = inputs[i] as GrpcInput
    const input = checkInput(i, t.name, t.datatype, t.shape, mv)
    const data = t.shm !== undefined
      ? tensorFromShm(input, t.shm, shm, memory)
      : t.raw !== undefined
      ? tensorFromBytes(input, t.raw, `raw_input_contents[${i}]`, memory)
      : tensorFromValues(input, arrayLeaves(t.values as unknown[]), flat((t.values as unknown[]).length), undefined, memory)
    addFeed(feeds, t.name, wireTensor(input, data, mv))
  }
  const rows = checkFeeds(feeds, mv)
  let outputs: OutputRequest[]
  if (msg.outputs.length === 0) {
    outputs = allOutputs(mv, false)
  } else {
    const seen = new Set<string>()
    outputs = msg.outputs.map((o, i) => {
      const spec = checkOutputName(i, o.name, mv, seen)
      const slice = sliceOf('output', spec.name, shmParameters(o.parameters))
      return outputRequest(spec, false, parameterValue(o.parameters?.classification) ?? 0, slice === undefined ? undefined : checkShmOutput(spec.name, slice, shm))
    })
  }
  return { id, rows, feeds, outputs, timeoutUs }
}
