/**
 * A look at a `ModelInferRequest`'s protobuf bytes before they are decoded.
 *
 * protobufjs turns each wire element into a JS value: an empty `inputs` entry (2 bytes)
 * into an object with defaults (hundreds of bytes), an empty `bytes_contents` entry into
 * a Buffer view, a packed bool (1 byte) into an array slot, an int64 into a decimal
 * string. A few MB on the wire can become far more heap. This walks the wire format
 * (no allocation per element), rejects messages that are malformed or past the structural
 * limits below, and says what decoding will cost, so the caller can charge it to the
 * request memory first. Strings the sidecar may repeat (model name and version, id, tensor
 * names, parameter keys) past their length limit (`../client-strings.ts`) are refused here,
 * before protobufjs makes JS strings of them. Pure: bytes in, numbers out.
 */
import { errors, type SidecarError } from '../core/errors.js'
import { MAX_ID_BYTES, MAX_NAME_BYTES, MAX_PARAMETER_KEY_BYTES, PREVIEW_BYTES, tooLong } from '../core/client-strings.js'

/** Inputs, outputs and raw_input_contents entries in one request. */
export const MAX_TENSORS = 256
/** Parameters in one map (request, input or output). */
const MAX_PARAMETERS = 64
/** Dimensions of one shape. */
export const MAX_DIMS = 32

/** Estimated heap of decoded values (Node 20, 64-bit). */
const COST = {
  tensor: 512, // an inputs/outputs entry: object with defaults, shape array, parameters map
  parameter: 256, // a map entry: key string, InferParameter object
  slot: 8, // an array slot (numbers, booleans)
  int64: 8 + 32, // a slot and the decimal string protobufjs makes (longs: String)
  buffer: 128, // a Buffer view over the message (bytes_contents, raw_input_contents)
  string: 8 + 24 // a slot and a string header, for bytes_contents turned into strings
} as const

const enum Wire { Varint = 0, Fixed64 = 1, Len = 2, Fixed32 = 5 }

class Reader {
  pos: number
  readonly end: number
  readonly buf: Uint8Array
  constructor (buf: Uint8Array, pos: number, end: number) {
    this.buf = buf
    this.pos = pos
    this.end = end
  }

  get done (): boolean { return this.pos >= this.end }

  /** Reads a field's tag: [field number, wire type]. */
  tag (): [number, number] {
    const tag = this.varint()
    return [tag >>> 3, tag & 7]
  }

  /** A varint's low 32 bits, unsigned, as protobufjs reads tags and lengths (up to 10 bytes are consumed). */
  varint (): number {
    let value = 0
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw bad('truncated varint')
      const b = this.buf[this.pos++] as number
      if (i < 5) value = (value | ((b & 0x7f) << (7 * i))) >>> 0
      if ((b & 0x80) === 0) return value
    }
    throw bad('varint longer than 10 bytes')
  }

  /** Skips a field's value of wire type `wt`; returns [start, end) of a length-delimited one. */
  skip (wt: number): [number, number] {
    switch (wt) {
      case Wire.Varint: this.varint(); return [this.pos, this.pos]
      case Wire.Fixed64: return this.#advance(8)
      case Wire.Fixed32: return this.#advance(4)
      case Wire.Len: {
        const len = this.varint()
        return this.#advance(len)
      }
      default: throw bad(`unsupported wire type ${wt}`)
    }
  }

  #advance (n: number): [number, number] {
    const start = this.pos
    if (n > this.end - this.pos) throw bad('field runs past the end of its message')
    this.pos += n
    return [start, this.pos]
  }

  sub ([start, end]: [number, number]): Reader {
    return new Reader(this.buf, start, end)
  }
}

function bad (detail: string): SidecarError {
  return errors.BAD_REQUEST(`the message is not a valid ModelInferRequest: ${detail}`)
}

function expect (wt: number, want: number, field: string): void {
  if (wt !== want) throw bad(`${field} has wire type ${wt}, expected ${want}`)
}

/** Refuses the string field `what` at [start, end) when it is longer than `max` bytes (its message shows its start). */
function checkString (r: Reader, [start, end]: [number, number], what: string, max: number): void {
  if (end - start <= max) return
  // Twice the preview: the cut falls on a whole character, well before a sequence split here.
  const head = Buffer.from(r.buf.buffer, r.buf.byteOffset + start, Math.min(end - start, 2 * PREVIEW_BYTES)).toString('utf8')
  throw tooLong(what, head, max)
}

/** Counts varints in a packed field (each at most 10 bytes, as protobufjs requires). */
function countVarints (buf: Uint8Array, start: number, end: number): number {
  let n = 0
  let run = 0
  for (let i = start; i < end; i++) {
    if (((buf[i] as number) & 0x80) === 0) {
      n++
      run = 0
    } else if (++run >= 10) {
      throw bad('packed varint longer than 10 bytes')
    }
  }
  if (run > 0) throw bad('truncated packed varint')
  return n
}

/** A map<string, InferParameter> entry: checked for shape only. protobufjs fails on an entry without a value. */
function parameterEntry (r: Reader, what: string): void {
  let value = false
  while (!r.done) {
    const [field, wt] = r.tag()
    if (field === 1 || field === 2) expect(wt, Wire.Len, field === 1 ? 'parameter key' : 'parameter value')
    const span = r.skip(wt)
    if (field === 1) checkString(r, span, `a key of ${what}`, MAX_PARAMETER_KEY_BYTES)
    if (field === 2) {
      value = true
      const v = r.sub(span)
      while (!v.done) {
        const [f, w] = v.tag()
        const want = f === 3 ? Wire.Len : f === 4 ? Wire.Fixed64 : f >= 1 && f <= 5 ? Wire.Varint : w
        expect(w, want, 'parameter value')
        v.skip(w)
      }
    }
  }
  if (!value) throw bad('a parameters entry has no value')
}

/** Repeated scalar field (packed or not): returns how many elements the span holds. */
function scalarCount (r: Reader, wt: number, element: Wire, name: string): number {
  if (wt === Wire.Len) {
    const [start, end] = r.skip(wt)
    if (element === Wire.Varint) return countVarints(r.buf, start, end)
    const size = element === Wire.Fixed32 ? 4 : 8
    if ((end - start) % size !== 0) throw bad(`packed ${name} is not a whole number of elements`)
    return (end - start) / size
  }
  expect(wt, element, name)
  r.skip(wt)
  return 1
}

/** InferTensorContents: the decoded cost of its elements. */
function contentsCost (r: Reader): number {
  let cost = 0
  while (!r.done) {
    const [field, wt] = r.tag()
    switch (field) {
      case 1: cost += scalarCount(r, wt, Wire.Varint, 'bool_contents') * COST.slot; break
      case 2: cost += scalarCount(r, wt, Wire.Varint, 'int_contents') * COST.slot; break
      case 3: cost += scalarCount(r, wt, Wire.Varint, 'int64_contents') * COST.int64; break
      case 4: cost += scalarCount(r, wt, Wire.Varint, 'uint_contents') * COST.slot; break
      case 5: cost += scalarCount(r, wt, Wire.Varint, 'uint64_contents') * COST.int64; break
      case 6: cost += scalarCount(r, wt, Wire.Fixed32, 'fp32_contents') * COST.slot; break
      case 7: cost += scalarCount(r, wt, Wire.Fixed64, 'fp64_contents') * COST.slot; break
      case 8: {
        expect(wt, Wire.Len, 'bytes_contents')
        const [start, end] = r.skip(wt)
        cost += COST.buffer + COST.string + 2 * (end - start)
        break
      }
      default: r.skip(wt)
    }
  }
  return cost
}

/** InferInputTensor or InferRequestedOutputTensor; `what`: `inputs[i]` or `outputs[i]`. */
function tensorCost (r: Reader, input: boolean, what: string): number {
  let cost = COST.tensor
  let params = 0
  let dims = 0
  while (!r.done) {
    const [field, wt] = r.tag()
    if (field === 1 || (input && field === 2)) {
      expect(wt, Wire.Len, field === 1 ? 'name' : 'datatype')
      const span = r.skip(wt)
      if (field === 1) checkString(r, span, `${what}.name`, MAX_NAME_BYTES)
    } else if (input && field === 3) {
      dims += scalarCount(r, wt, Wire.Varint, 'shape')
      if (dims > MAX_DIMS) throw errors.BAD_REQUEST(`an input shape has more than ${MAX_DIMS} dimensions`)
    } else if ((input && field === 4) || (!input && field === 2)) {
      expect(wt, Wire.Len, 'parameters')
      if (++params > MAX_PARAMETERS) throw errors.BAD_REQUEST(`a tensor has more than ${MAX_PARAMETERS} parameters`)
      parameterEntry(r.sub(r.skip(wt)), `${what}.parameters`)
      cost += COST.parameter
    } else if (input && field === 5) {
      expect(wt, Wire.Len, 'contents')
      cost += contentsCost(r.sub(r.skip(wt)))
    } else {
      r.skip(wt)
    }
  }
  return cost + dims * COST.int64
}

/**
 * Checks a serialized ModelInferRequest and returns the heap its decoding will take,
 * the message itself included. Throws a 400 `SidecarError` for a malformed message or one
 * past the structural limits.
 */
export function prescanInferRequest (buf: Uint8Array): number {
  const r = new Reader(buf, 0, buf.byteLength)
  let cost = buf.byteLength
  let inputs = 0
  let outputs = 0
  let raw = 0
  let params = 0
  while (!r.done) {
    const [field, wt] = r.tag()
    switch (field) {
      case 1: case 2: case 3: {
        const name = ['model_name', 'model_version', 'id'][field - 1] as string
        expect(wt, Wire.Len, name)
        checkString(r, r.skip(wt), name, field === 3 ? MAX_ID_BYTES : MAX_NAME_BYTES)
        break
      }
      case 4:
        expect(wt, Wire.Len, 'parameters')
        if (++params > MAX_PARAMETERS) throw errors.BAD_REQUEST(`the request has more than ${MAX_PARAMETERS} parameters`)
        parameterEntry(r.sub(r.skip(wt)), 'parameters')
        cost += COST.parameter
        break
      case 5:
        expect(wt, Wire.Len, 'inputs')
        if (++inputs > MAX_TENSORS) throw errors.BAD_REQUEST(`the request has more than ${MAX_TENSORS} inputs`)
        cost += tensorCost(r.sub(r.skip(wt)), true, `inputs[${inputs - 1}]`)
        break
      case 6:
        expect(wt, Wire.Len, 'outputs')
        if (++outputs > MAX_TENSORS) throw errors.BAD_REQUEST(`the request has more than ${MAX_TENSORS} outputs`)
        cost += tensorCost(r.sub(r.skip(wt)), false, `outputs[${outputs - 1}]`)
        break
      case 7:
        expect(wt, Wire.Len, 'raw_input_contents')
        if (++raw > MAX_TENSORS) throw errors.BAD_REQUEST(`the request has more than ${MAX_TENSORS} raw_input_contents`)
        r.skip(wt)
        cost += COST.buffer
        break
      default:
        r.skip(wt)
    }
  }
  return cost
}
