/**
 * Open Inference Protocol datatypes and their ONNX Runtime / typed-array twins.
 * Pure data: no I/O.
 */

export type OipDatatype =
  | 'BOOL' | 'UINT8' | 'UINT16' | 'UINT32' | 'UINT64'
  | 'INT8' | 'INT16' | 'INT32' | 'INT64'
  | 'FP16' | 'FP32' | 'FP64' | 'BYTES'

export type OrtType =
  | 'bool' | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'int8' | 'int16' | 'int32' | 'int64'
  | 'float16' | 'float32' | 'float64' | 'string'

export type TensorData =
  | Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array | string[]

export interface TypeInfo {
  oip: OipDatatype
  ort: OrtType
  /** Bytes per element in the binary extension; 0 for BYTES (length-prefixed). */
  size: number
  /** Typed-array constructor; undefined for BYTES. */
  array?: new (n: number | ArrayBufferLike, offset?: number, length?: number) => Exclude<TensorData, string[]>
  kind: 'float' | 'int' | 'bigint' | 'bool' | 'bytes'
  min?: number | bigint
  max?: number | bigint
}

const TYPES: TypeInfo[] = [
  { oip: 'BOOL', ort: 'bool', size: 1, array: Uint8Array, kind: 'bool' },
  { oip: 'UINT8', ort: 'uint8', size: 1, array: Uint8Array, kind: 'int', min: 0, max: 255 },
  { oip: 'UINT16', ort: 'uint16', size: 2, array: Uint16Array, kind: 'int', min: 0, max: 65535 },
  { oip: 'UINT32', ort: 'uint32', size: 4, array: Uint32Array, kind: 'int', min: 0, max: 4294967295 },
  { oip: 'UINT64', ort: 'uint64', size: 8, array: BigUint64Array, kind: 'bigint', min: 0n, max: 18446744073709551615n },
  { oip: 'INT8', ort: 'int8', size: 1, array: Int8Array, kind: 'int', min: -128, max: 127 },
  { oip: 'INT16', ort: 'int16', size: 2, array: Int16Array, kind: 'int', min: -32768, max: 32767 },
  { oip: 'INT32', ort: 'int32', size: 4, array: Int32Array, kind: 'int', min: -2147483648, max: 2147483647 },
  { oip: 'INT64', ort: 'int64', size: 8, array: BigInt64Array, kind: 'bigint', min: -9223372036854775808n, max: 9223372036854775807n },
  { oip: 'FP16', ort: 'float16', size: 2, array: Uint16Array, kind: 'float' },
  { oip: 'FP32', ort: 'float32', size: 4, array: Float32Array, kind: 'float' },
  { oip: 'FP64', ort: 'float64', size: 8, array: Float64Array, kind: 'float' },
  { oip: 'BYTES', ort: 'string', size: 0, kind: 'bytes' }
]

const byOip = new Map<string, TypeInfo>(TYPES.map(t => [t.oip, t]))
const byOrt = new Map<string, TypeInfo>(TYPES.map(t => [t.ort, t]))

export function isOipDatatype (value: unknown): value is OipDatatype {
  return typeof value === 'string' && byOip.has(value)
}

export function typeInfo (oip: OipDatatype): TypeInfo {
  return byOip.get(oip) as TypeInfo
}

/** The OIP datatype for an ONNX Runtime tensor type; undefined for types OIP cannot carry. */
export function oipFromOrt (ort: string): OipDatatype | undefined {
  return byOrt.get(ort)?.oip
}

export function ortFromOip (oip: OipDatatype): OrtType {
  return typeInfo(oip).ort
}

export function elementCount (shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

/** Allocates an empty tensor buffer of `n` elements. */
export function allocate (oip: OipDatatype, n: number): TensorData {
  const info = typeInfo(oip)
  if (info.array === undefined) return new Array<string>(n).fill('')
  return new info.array(n)
}

/**
 * The tensor in `buf` (raw little-endian elements; BYTES length-prefixed). Always a copy:
 * `buf` is a slice of the request body, possibly unaligned for the element type, and the
 * tensor's own buffer is later transferred to a worker thread.
 */
export function fromBytes (oip: OipDatatype, buf: Uint8Array): TensorData {
  const info = typeInfo(oip)
  if (info.array === undefined) return decodeBytesElements(buf)
  const n = buf.byteLength / info.size
  const copy = new Uint8Array(buf.byteLength)
  copy.set(buf)
  return new info.array(copy.buffer, 0, n)
}

/** Raw little-endian bytes of a tensor (BYTES: 4-byte length prefix per element). */
export function toBytes (data: TensorData): Uint8Array {
  if (Array.isArray(data)) return encodeBytesElements(data)
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

function encodeBytesElements (items: readonly string[]): Uint8Array {
  const parts = items.map(s => Buffer.from(s, 'utf8'))
  const total = parts.reduce((n, p) => n + 4 + p.length, 0)
  const out = Buffer.allocUnsafe(total)
  let off = 0
  for (const p of parts) {
    out.writeUInt32LE(p.length, off)
    p.copy(out, off + 4)
    off += 4 + p.length
  }
  return out
}

function decodeBytesElements (buf: Uint8Array): string[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  const out: string[] = []
  let off = 0
  while (off < b.length) {
    if (off + 4 > b.length) throw new RangeError(`truncated length prefix at byte ${off}`)
    const len = b.readUInt32LE(off)
    if (off + 4 + len > b.length) throw new RangeError(`element at byte ${off} claims ${len} bytes but only ${b.length - off - 4} remain`)
    out.push(b.toString('utf8', off + 4, off + 4 + len))
    off += 4 + len
  }
  return out
}
