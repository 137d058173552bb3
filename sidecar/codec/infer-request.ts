/**
 * The internal request both protocols decode into (`InferRequest`), the request-level
 * checks they share (id, timeout, outputs, the set of inputs and their rows), and the REST
 * decoder: an Open Inference Protocol request body (JSON, plus Triton's binary tensor
 * extension) into validated tensors for one model version. The checks of one tensor are
 * in `tensor-checks.ts`; the gRPC decoder is `grpc/decode.ts`. Pure: every problem is a
 * 400 `SidecarError` naming the input or field; nothing here touches the model.
 */
import { errors } from '../core/errors.js'
import type { TensorData } from '../core/datatypes.js'
import type { ModelSignature, TensorSpec } from '../models/signature.js'
import type { WireTensor } from '../core/tensor.js'
import { MAX_DEPTH, TensorText } from './json-scanner.js'
import { flat, NestedShape, type Nesting } from './nested-shape.js'
import { arrayLeaves, checkInput, describe, tensorFromBytes, tensorFromValues, wireTensor, type MemoryCharge } from './tensor-checks.js'
import { checkLength, checkParameterKeys, MAX_ID_BYTES, MAX_NAME_BYTES } from '../core/client-strings.js'
import type { SharedMemoryRegions } from '../shm/regions.js'
import { checkShmOutput, sliceOf, tensorFromShm, type RegionSlice } from './shm-tensors.js'

export type { MemoryCharge }

export interface OutputRequest {
  name: string
  binary: boolean
  /** 0: plain tensor; k > 0: top-k classification strings. */
  classification: number
  /** Written into this system shared memory slice, and answered without data. */
  shm?: RegionSlice
}

export interface InferRequest {
  id: string | undefined
  rows: number
  feeds: Record<string, WireTensor>
  outputs: OutputRequest[]
  /** Triton's request `timeout` parameter, microseconds; 0 for none. */
  timeoutUs: number
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Input number `index` of a REST body, decoded into `feeds`. */
function decodeInput (raw: unknown, index: number, mv: ModelSignature, binary: BinaryCursor, memory: MemoryCharge | undefined, feeds: Record<string, WireTensor>, shm: SharedMemoryRegions | undefined): void {
  if (!isObject(raw)) throw errors.BAD_REQUEST(`inputs[${index}] must be an object`)
  const name = raw.name
  if (typeof name !== 'string' || name === '') throw errors.BAD_REQUEST(`inputs[${index}].name must be a non-empty string`)
  const input = checkInput(index, name, raw.datatype, raw.shape, mv)
  const params = raw.parameters
  if (params !== undefined && !isObject(params)) throw errors.BAD_INPUT(name, 'parameters must be an object')
  checkParameterKeys(`inputs[${index}].parameters`, params)
  const binarySize = params?.binary_data_size
  const slice = sliceOf('input', name, params)

  let data: TensorData
  if (slice !== undefined) {
    if (raw.data !== undefined) throw errors.BAD_INPUT(name, 'has both data and parameters.shared_memory_region')
    if (binarySize !== undefined) throw errors.BAD_INPUT(name, 'has both parameters.binary_data_size and parameters.shared_memory_region')
    data = tensorFromShm(input, slice, shm, memory)
  } else if (binarySize !== undefined) {
    if (raw.data !== undefined) throw errors.BAD_INPUT(name, 'has both data and parameters.binary_data_size')
    if (!Number.isSafeInteger(binarySize) || (binarySize as number) < 0) throw errors.BAD_INPUT(name, `parameters.binary_data_size must be a non-negative integer, got ${describe(binarySize)}`)
    data = tensorFromBytes(input, binary.take(name, binarySize as number), 'binary_data_size', memory)
  } else if (raw.data instanceof TensorText) {
    data = tensorFromValues(input, raw.data.leaves(), raw.data.nesting, raw.data.stringBytes, memory)
  } else if (Array.isArray(raw.data)) {
    const walked = flatData(name, raw.data)
    data = tensorFromValues(input, arrayLeaves(walked.values), walked.nesting, undefined, memory)
  } else if (raw.data === undefined) {
    throw errors.BAD_INPUT(name, 'has no data (give data, or parameters.binary_data_size with a binary body)')
  } else {
    throw errors.BAD_INPUT(name, 'data must be an array (flat or nested)')
  }
  addFeed(feeds, name, wireTensor(input, data, mv))
}

/**
 * Row-major flattening of nested `data`, and how it nests (`NestedShape`). Flat data (the
 * common case) is used as it is; `Array.prototype.flat` costs ~0.4 µs per element on Node
 * 20, a hand walk ~0.06. Nesting deeper than `MAX_DEPTH` is a 400 (`JSON.parse` itself
 * takes any depth), so the walk never runs out of stack.
 */
function flatData (input: string, data: unknown[]): { values: unknown[], nesting: Nesting } {
  for (let i = 0; i < data.length; i++) {
    if (Array.isArray(data[i])) {
      const out: unknown[] = []
      const shape = new NestedShape()
      const walk = (a: unknown[], depth: number): void => {
        if (depth > MAX_DEPTH) throw errors.JSON_LIMIT(`input '${input}': data nested deeper than ${MAX_DEPTH} levels`)
        for (let j = 0; j < a.length; j++) {
          const v = a[j]
          if (Array.isArray(v)) {
            shape.open(depth + 1)
            walk(v, depth + 1)
          } else {
            out.push(v)
            if (depth !== shape.valueDepth) shape.value(depth)
          }
        }
        shape.close(depth, a.length)
      }
      walk(data, 1)
      return { values: out, nesting: shape.result() }
    }
  }
  return { values: data, nesting: flat(data.length) }
}

/** Hands out consecutive slices of the binary part of a REST body (Triton's binary tensor extension). */
class BinaryCursor {
  #buf: Uint8Array
  #offset = 0
  constructor (buf: Uint8Array | undefined) { this.#buf = buf ?? new Uint8Array(0) }
  /** The next `size` bytes, for `input`; throws a 400 when they are not there. */
  take (input: string, size: number): Uint8Array {
    if (this.#offset + size > this.#buf.byteLength) {
      throw errors.BAD_BINARY(`input '${input}' needs ${size} bytes at offset ${this.#offset} but the body has only ${this.#buf.byteLength - this.#offset} left`)
    }
    const out = this.#buf.subarray(this.#offset, this.#offset + size)
    this.#offset += size
    return out
  }

  /** Throws when bytes were sent that no input claimed. */
  finish (): void {
    if (this.#offset !== this.#buf.byteLength) throw errors.BAD_BINARY(`${this.#buf.byteLength - this.#offset} bytes after the last tensor are not claimed by any binary_data_size`)
  }
}

/** Every output of the model, as asked for when a request names none. */
export function allOutputs (mv: ModelSignature, binary: boolean): OutputRequest[] {
  return mv.outputs.map(o => ({ name: o.name, binary, classification: 0 }))
}

/** Output number `index`, named `name`: one the model has, not asked for before (`seen`, which it joins). */
export function checkOutputName (index: number, name: unknown, mv: ModelSignature, seen: Set<string>): TensorSpec {
  if (typeof name !== 'string' || name === '') throw errors.BAD_REQUEST(`outputs[${index}].name must be a non-empty string`)
  checkLength(`outputs[${index}].name`, name, MAX_NAME_BYTES)
  const spec = mv.outputByName.get(name)
  if (spec === undefined) throw errors.BAD_OUTPUT(name, `model '${mv.name}' has no such output (outputs: ${mv.outputs.map(x => x.name).join(', ')})`)
  if (seen.has(name)) throw errors.BAD_OUTPUT(name, 'requested twice')
  seen.add(name)
  return spec
}

/** An output's options (`binary_data`, `classification`, a shared memory slice), checked. */
export function outputRequest (spec: TensorSpec, binary: unknown, classification: unknown, shm?: RegionSlice): OutputRequest {
  const name = spec.name
  if (typeof binary !== 'boolean') throw errors.BAD_OUTPUT(name, `parameters.binary_data must be a boolean, got ${describe(binary)}`)
  const k = classification
  if (!Number.isSafeInteger(k) || (k as number) < 0) throw errors.BAD_OUTPUT(name, `parameters.classification must be a positive integer, got ${describe(k)}`)
  if ((k as number) > 0 && spec.datatype === 'BYTES') throw errors.BAD_OUTPUT(name, 'classification needs a numeric output, this one is BYTES')
  if (shm === undefined) return { name, binary, classification: k as number }
  if ((k as number) > 0) throw errors.BAD_OUTPUT(name, 'shared memory can\'t be set on a classification output')
  return { name, binary: false, classification: 0, shm }
}

function decodeOutputs (raw: unknown, mv: ModelSignature, binaryDefault: boolean, regions: SharedMemoryRegions | undefined): OutputRequest[] {
  if (raw === undefined) return allOutputs(mv, binaryDefault)
  if (!Array.isArray(raw)) throw errors.BAD_REQUEST('outputs must be an array')
  const seen = new Set<string>()
  return raw.map((o, i) => {
    if (!isObject(o)) throw errors.BAD_REQUEST(`outputs[${i}] must be an object`)
    const spec = checkOutputName(i, o.name, mv, seen)
    const p = o.parameters
    if (p !== undefined && !isObject(p)) throw errors.BAD_OUTPUT(spec.name, 'parameters must be an object')
    checkParameterKeys(`outputs[${i}].parameters`, p)
    const shm = sliceOf('output', spec.name, p)
    if (shm !== undefined && p?.binary_data === true) throw errors.BAD_OUTPUT(spec.name, 'has both parameters.binary_data and parameters.shared_memory_region')
    return outputRequest(spec, p?.binary_data ?? binaryDefault, p?.classification ?? 0, shm === undefined ? undefined : checkShmOutput(spec.name, shm, regions))
  })
}

/** The request `id`, whose length is bounded: it is echoed in the answer (as names and keys are repeated in messages). */
export function checkId (id: string | undefined): string | undefined {
  if (id !== undefined) checkLength('id', id, MAX_ID_BYTES)
  return id
}

/** Triton's request `timeout` parameter (µs; 0 for none), checked. */
export function checkTimeout (timeout: unknown): number {
  if (!Number.isSafeInteger(timeout) || (timeout as number) < 0) throw errors.BAD_REQUEST(`parameters.timeout must be a non-negative integer (microseconds), got ${describe(timeout)}`)
  return timeout as number
}

/** Refuses a request with no inputs. */
export function checkInputCount (count: number): void {
  if (count === 0) throw errors.BAD_REQUEST('inputs must be a non-empty array')
}

/** Adds input `name` to `feeds`; a name given twice is a 400. */
export function addFeed (feeds: Record<string, WireTensor>, name: string, tensor: WireTensor): void {
  if (feeds[name] !== undefined) throw errors.BAD_INPUT(name, 'given more than once')
  feeds[name] = tensor
}

/** Once every input is decoded: none of the model's is missing, and all have the same rows. Returns the rows. */
export function checkFeeds (feeds: Record<string, WireTensor>, mv: ModelSignature): number {
  const missing = mv.inputs.filter(s => feeds[s.name] === undefined).map(s => s.name)
  if (missing.length > 0) throw errors.BAD_INPUT(missing[0] as string, `missing (model '${mv.name}' needs inputs: ${mv.inputs.map(s => s.name).join(', ')})`)
  let rows = 1
  if (mv.maxBatchSize > 0) {
    const entries = Object.entries(feeds)
    rows = (entries[0] as [string, WireTensor])[1].dims[0] as number
    for (const [name, t] of entries) {
      if (t.dims[0] !== rows) throw errors.BAD_INPUT(name, `batch size ${t.dims[0]} differs from input '${(entries[0] as [string, WireTensor])[0]}' (${rows})`)
    }
    if (rows === 0) throw errors.BAD_INPUT((entries[0] as [string, WireTensor])[0], 'batch dimension is 0; send at least one row')
    if (rows > mv.maxBatchSize) throw errors.BAD_INPUT((entries[0] as [string, WireTensor])[0], `batch of ${rows} rows exceeds max_batch_size ${mv.maxBatchSize}`)
  }
  return rows
}

/**
 * The REST request: `body` is the JSON header (`JSON.parse`'s, or the bounded parser's with
 * `TensorText` data), `binary` the part of the body after it (Triton's binary extension).
 * `memory`, when given, is charged for each tensor before it is allocated. `shm`: the
 * registered system shared memory regions that inputs may be read from and outputs
 * written to (none: a tensor that names a region is a 400).
 */
export function decodeInferRequest (body: unknown, binary: Uint8Array | undefined, mv: ModelSignature, memory?: MemoryCharge, shm?: SharedMemoryRegions): InferRequest {
  if (!isObject(body)) throw errors.BAD_REQUEST('request body must be a JSON object')
  const id = body.id
  if (id !== undefined && typeof id !== 'string') throw errors.BAD_REQUEST('id must be a string')
  checkId(id)
  const params = body.parameters
  if (params !== undefined && !isObject(params)) throw errors.BAD_REQUEST('parameters must be an object')
  checkParameterKeys('parameters', params)
  const binaryOut = params?.binary_data_output ?? false
  if (typeof binaryOut !== 'boolean') throw errors.BAD_REQUEST(`parameters.binary_data_output must be a boolean, got ${describe(binaryOut)}`)
  const timeoutUs = checkTimeout(params?.timeout ?? 0)

  const inputs = body.inputs
  if (!Array.isArray(inputs)) throw errors.BAD_REQUEST('inputs must be a non-empty array')
  checkInputCount(inputs.length)
  const cursor = new BinaryCursor(binary)
  const feeds: Record<string, WireTensor> = {}
  for (let i = 0; i < inputs.length; i++) decodeInput(inputs[i], i, mv, cursor, memory, feeds, shm)
  cursor.finish()
  const rows = checkFeeds(feeds, mv)
  return { id, rows, feeds, outputs: decodeOutputs(body.outputs, mv, binaryOut, shm), timeoutUs }
}
