/**
 * The checks of one input tensor against its model, whatever protocol carried it: the
 * name is one the model has, the datatype and shape are the model's, the data holds as
 * many elements as the shape and each fits the datatype; memory is charged before the
 * tensor is allocated, and the model's `preprocess` normalisation is applied. The REST
 * decoder (`infer-request.ts`) and the gRPC one (`grpc/decode.ts`) each read their own
 * wire format and call these, so both say the same things about the same mistakes.
 * Pure: every problem is a 400 `SidecarError` naming the input.
 */
import { errors } from '../core/errors.js'
import { allocate, fromBytes, isOipDatatype, typeInfo, type OipDatatype, type TensorData, type TypeInfo } from '../core/datatypes.js'
import { numberToHalf } from '../core/float16.js'
import { checkLength, MAX_NAME_BYTES } from '../core/client-strings.js'
import type { WireTensor } from '../core/tensor.js'
import type { ModelSignature } from '../models/signature.js'
import { OtherValue, type Leaves } from './json-scanner.js'
import { nestingMismatch, type Nesting } from './nested-shape.js'
import { normalize } from './normalize.js'
import { tensorBytes } from './request-memory.js'

/** Charges memory a request is about to allocate; throws (413/503) when it cannot. */
export interface MemoryCharge {
  charge: (bytes: number) => void
}

/** ONNX Runtime string tensors are C strings: a NUL would silently cut the value short. */
const NUL_MESSAGE = 'contains a NUL character, which ONNX Runtime string tensors cannot carry'

export const fmtShape = (s: readonly number[]): string => `[${s.join(',')}]`

/** An element as error messages show it: JSON, cut short. */
export function describe (v: unknown): string {
  if (v instanceof OtherValue) return v.preview
  let text: string
  try {
    text = JSON.stringify(v) ?? String(v)
  } catch {
    text = Array.isArray(v) ? '[…]' : String(v) // nested too deep to print
  }
  return text.length > 40 ? `${text.slice(0, 40)}…` : text
}

/** An input whose name, datatype and shape the model accepts. */
export interface CheckedInput {
  name: string
  datatype: OipDatatype
  /** The datatype's sizes, ranges and ONNX Runtime type, looked up once. */
  info: TypeInfo
  /** Bytes per element in raw form; 0 for BYTES (length-prefixed). */
  size: number
  dims: number[]
  /** Elements the shape holds. */
  count: number
}

/**
 * Input number `index`, named `name` (a non-empty string), declared as `datatype` and
 * `shape` (unchecked, as the client sent them): checked against the model.
 */
export function checkInput (index: number, name: string, datatype: unknown, shape: unknown, mv: ModelSignature): CheckedInput {
  checkLength(`inputs[${index}].name`, name, MAX_NAME_BYTES)
  const spec = mv.inputByName.get(name)
  if (spec === undefined) throw errors.BAD_INPUT(name, `model '${mv.name}' has no such input (inputs: ${mv.inputs.map(i => i.name).join(', ')})`)
  if (!isOipDatatype(datatype)) throw errors.BAD_INPUT(name, `datatype ${describe(datatype)} is not an Open Inference Protocol datatype`)
  if (datatype !== spec.datatype) throw errors.BAD_INPUT(name, `datatype ${datatype} does not match model datatype ${spec.datatype}`)
  if (!Array.isArray(shape)) throw errors.BAD_INPUT(name, `shape must be an array of non-negative integers, got ${describe(shape)}`)
  const want = spec.shape
  let count = 1
  let matches = shape.length === want.length
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i]
    if (!Number.isSafeInteger(d) || (d as number) < 0) throw errors.BAD_INPUT(name, `shape must be an array of non-negative integers, got ${describe(shape)}`)
    if (matches && want[i] !== -1 && want[i] !== d) matches = false
    count *= d as number
  }
  const dims = shape as number[]
  if (!matches) throw errors.BAD_INPUT(name, `shape ${fmtShape(dims)} does not match model shape ${fmtShape(want)}`)
  const info = typeInfo(datatype)
  return { name, datatype, info, size: info.size, dims, count }
}

/** A raw tensor of `byteLength` bytes holds exactly the shape's elements (BYTES, length-prefixed, is checked when decoded). */
export function checkByteSize (input: CheckedInput, byteLength: number, sizeLabel: string): void {
  const { name, datatype, size, dims, count } = input
  if (size > 0 && byteLength !== count * size) throw errors.BAD_INPUT(name, `${sizeLabel} is ${byteLength} bytes but shape ${fmtShape(dims)} of ${datatype} needs ${count * size}`)
}

/**
 * The tensor in `bytes`: raw little-endian elements, BYTES length-prefixed. `sizeLabel`
 * says how the client stated their size (`binary_data_size`, `raw_input_contents[0]`).
 */
export function tensorFromBytes (input: CheckedInput, bytes: Uint8Array, sizeLabel: string, memory: MemoryCharge | undefined, adopt = false): TensorData {
  const { name, datatype, size, dims, count } = input
  checkByteSize(input, bytes.byteLength, sizeLabel)
  // BYTES: every element has a 4-byte length prefix, so there are at most byteLength / 4.
  memory?.charge(size > 0 ? bytes.byteLength : tensorBytes(datatype, Math.ceil(bytes.byteLength / 4), bytes.byteLength))
  let data: TensorData
  try {
    // `adopt`: the bytes are a fresh buffer of the caller's (a shared memory read): view them, no second copy.
    const info = input.info
    data = adopt && info.array !== undefined && bytes.byteOffset % size === 0
      ? new info.array(bytes.buffer, bytes.byteOffset, count)
      : fromBytes(datatype, bytes)
  } catch (err) {
    throw errors.BAD_INPUT(name, `binary BYTES data is malformed: ${(err as Error).message}`)
  }
  if (Array.isArray(data)) {
    if (data.length !== count) throw errors.BAD_INPUT(name, `binary data holds ${data.length} strings but shape ${fmtShape(dims)} needs ${count}`)
    const at = data.findIndex(v => v.includes('\u0000'))
    if (at !== -1) throw errors.BAD_INPUT(name, `element ${at} ${NUL_MESSAGE}`)
  }
  if (datatype === 'BOOL') (data as Uint8Array).forEach((v, i, a) => { a[i] = v === 0 ? 0 : 1 })
  return data
}

/** Leaves of flat data that is already a JS array (JSON.parse's, or a gRPC contents field). */
export function arrayLeaves (values: readonly unknown[]): Leaves {
  let i = 0
  return { count: values.length, next: () => values[i++] }
}

/**
 * The tensor from element values, read one by one from `leaves`, which nest as `nesting`.
 * `stringBytes`: the UTF-8 bytes of the strings among them when they are still to be made
 * (the bounded JSON parser's text); undefined when they already exist as JS values.
 */
export function tensorFromValues (input: CheckedInput, leaves: Leaves, nesting: Nesting, stringBytes: number | undefined, memory: MemoryCharge | undefined): TensorData {
  const { name, datatype, dims, count } = input
  // Nested data must nest as the shape: a ragged array's values would land in the wrong places.
  const misfit = nestingMismatch(nesting, dims)
  if (misfit !== undefined) throw errors.BAD_INPUT(name, misfit)
  if (leaves.count !== count) throw errors.BAD_INPUT(name, `data has ${leaves.count} elements but shape ${fmtShape(dims)} needs ${count}`)
  // JS values already exist: only the array holding them is new.
  memory?.charge(stringBytes !== undefined ? tensorBytes(datatype, count, stringBytes) : count * Math.max(8, input.size))
  return fillValues(name, datatype, input.info, leaves, count)
}

function fillValues (input: string, datatype: OipDatatype, info: TypeInfo, leaves: Leaves, n: number): TensorData {
  const out = allocate(datatype, n)
  let v: unknown
  const bad = (i: number, what: string): never => {
    throw errors.BAD_INPUT(input, `data[${i}] = ${describe(v)} ${what}`)
  }
  switch (info.kind) {
    case 'float': {
      const arr = out as Float32Array | Float64Array | Uint16Array
      const half = datatype === 'FP16'
      for (let i = 0; i < n; i++) {
        v = leaves.next()
        if (typeof v !== 'number') bad(i, `is not a number (datatype ${datatype})`)
        arr[i] = half ? numberToHalf(v as number) : v as number
      }
      return out
    }
    case 'int': {
      const arr = out as Int32Array
      const min = info.min as number
      const max = info.max as number
      for (let i = 0; i < n; i++) {
        v = leaves.next()
        if (typeof v !== 'number' || !Number.isInteger(v)) bad(i, `is not an integer (datatype ${datatype})`)
        if ((v as number) < min || (v as number) > max) bad(i, `is out of range for ${datatype} (${min}..${max})`)
        arr[i] = v as number
      }
      return out
    }
    case 'bigint': {
      // INT64/UINT64: safe integers as JSON numbers, anything larger as a decimal string.
      const arr = out as BigInt64Array
      for (let i = 0; i < n; i++) {
        v = leaves.next()
        let b: bigint
        if (typeof v === 'number') {
          if (!Number.isInteger(v)) bad(i, `is not an integer (datatype ${datatype})`)
          if (!Number.isSafeInteger(v)) bad(i, `is beyond 2^53 and lost precision in JSON; send it as a string ("${BigInt(v as number)}")`)
          b = BigInt(v as number)
        } else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) {
          b = BigInt(v)
        } else {
          bad(i, `is not an integer (datatype ${datatype})`)
        }
        if (b! < (info.min as bigint) || b! > (info.max as bigint)) bad(i, `is out of range for ${datatype}`)
        arr[i] = b!
      }
      return out
    }
    case 'bool': {
      const arr = out as Uint8Array
      for (let i = 0; i < n; i++) {
        v = leaves.next()
        if (typeof v !== 'boolean') bad(i, 'is not a boolean (datatype BOOL)')
        arr[i] = v === true ? 1 : 0
      }
      return out
    }
    case 'bytes': {
      const arr = out as string[]
      for (let i = 0; i < n; i++) {
        v = leaves.next()
        if (typeof v !== 'string') bad(i, 'is not a string (datatype BYTES)')
        if ((v as string).includes('\u0000')) bad(i, NUL_MESSAGE)
        arr[i] = v as string
      }
      return out
    }
  }
}

/** The tensor as the runtime takes it, normalised first when the model's config says so. */
export function wireTensor (input: CheckedInput, data: TensorData, mv: ModelSignature): WireTensor {
  const norm = mv.preprocess.get(input.name)
  if (norm !== undefined) normalize(data as Float32Array, norm)
  return { type: input.info.ort, dims: input.dims, data }
}
