/**
 * gRPC over HTTP/2, the wire pieces (PROTOCOL-HTTP2.md in grpc/grpc): length-prefixed
 * messages, `grpc-timeout`, metadata to and from headers, `grpc-message` percent-encoding,
 * and the status codes the transport itself answers with. Pure functions, no sockets:
 * `server.ts` and `call.ts` do the I/O.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2'

/** gRPC status codes (grpc's status.proto) the transport answers with. */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14
} as const

/** A status the transport answers with (the handler never ran, or its answer could not be sent). */
export interface CallStatus {
  code: number
  details: string
}

/** Bytes before each message: a compressed flag and a 32-bit big-endian length. */
export const PREFIX_BYTES = 5

/** `message` behind its 5-byte prefix (uncompressed). */
export function frame (message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX_BYTES + message.length)
  out[0] = 0
  out.writeUInt32BE(message.length, 1)
  out.set(message, PREFIX_BYTES)
  return out
}

/**
 * Collects the one request message of a unary call from DATA chunks. `push` returns a
 * status as soon as the stream breaks a rule (compressed, larger than `maxBytes`, a
 * second message); `finish` (at end of stream) returns the message or a status.
 */
export class MessageReader {
  #maxBytes: number
  #chunks: Buffer[] = []
  #bytes = 0
  /** Length of the message once its prefix has been read; -1 before. */
  #length = -1

  constructor (maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  /** The message's size with its prefix, once the prefix has been read (and accepted); -1 before. */
  get declaredBytes (): number {
    return this.#length < 0 ? -1 : PREFIX_BYTES + this.#length
  }

  push (chunk: Buffer): CallStatus | undefined {
    this.#chunks.push(chunk)
    this.#bytes += chunk.length
    if (this.#length < 0 && this.#bytes >= PREFIX_BYTES) {
      const head = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks)
      const flag = head[0]
      if (flag === 1) return { code: Status.UNIMPLEMENTED, details: 'compressed messages are not supported (grpc-encoding: identity only)' }
      if (flag !== 0) return { code: Status.INTERNAL, details: `invalid message flag ${flag}` }
      this.#length = head.readUInt32BE(1)
      if (this.#length > this.#maxBytes) {
        return { code: Status.RESOURCE_EXHAUSTED, details: `Received message larger than max (${this.#length} vs. ${this.#maxBytes})` }
      }
    }
    if (this.#length >= 0 && this.#bytes > PREFIX_BYTES + this.#length) {
      return { code: Status.UNIMPLEMENTED, details: 'a unary method takes exactly one request message' }
    }
    return undefined
  }

  finish (): Buffer | CallStatus {
    if (this.#bytes === 0) return { code: Status.UNIMPLEMENTED, details: 'a unary method takes exactly one request message; none was sent' }
    if (this.#length < 0 || this.#bytes < PREFIX_BYTES + this.#length) {
      return { code: Status.INTERNAL, details: `the stream ended inside a message (${this.#bytes} of ${this.#length < 0 ? '?' : PREFIX_BYTES + this.#length} bytes)` }
    }
    const all = this.#chunks.length === 1 ? this.#chunks[0] as Buffer : Buffer.concat(this.#chunks, this.#bytes)
    this.#chunks = []
    return all.subarray(PREFIX_BYTES)
  }
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 }

/** `grpc-timeout` (`1-8 digits` + H/M/S/m/u/n) in ms; undefined when absent, NaN when malformed. */
export function parseTimeout (value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const m = /^(\d{1,8})([HMSmun])$/.exec(value)
  if (m === null) return NaN
  return Number(m[1]) * (TIMEOUT_UNIT_MS[m[2] as string] as number)
}

/** `grpc-message` as the spec wants it: bytes outside printable ASCII, and '%', as %XX of UTF-8. */
export function encodeMessage (message: string): string {
  if (!/[^\x20-\x24\x26-\x7e]/.test(message)) return message
  let out = ''
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** Headers that are HTTP/2 or gRPC protocol, never metadata. */
const RESERVED = new Set(['content-type', 'te', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'content-length', 'connection', 'host'])

/**
 * Request metadata as the handlers read it (grpc-js's Metadata: `get`, `getMap`), read from
 * the request headers when asked: keys are lowercase (HTTP/2); `-bin` values are base64.
 */
export class CallMetadata {
  #headers: IncomingHttpHeaders

  constructor (headers: IncomingHttpHeaders) {
    this.#headers = headers
  }

  get (key: string): Array<string | Buffer> {
    const k = key.toLowerCase()
    if (k.charCodeAt(0) === 58 /* ':' */ || RESERVED.has(k)) return []
    const raw = this.#headers[k]
    if (raw === undefined) return []
    if (!k.endsWith('-bin')) return Array.isArray(raw) ? raw : [raw]
    return (Array.isArray(raw) ? raw : raw.split(',')).map(v => Buffer.from(v.trim(), 'base64'))
  }

  /** The first value of each key. */
  getMap (): Record<string, string | Buffer> {
    const out: Record<string, string | Buffer> = {}
    for (const key in this.#headers) {
      const first = this.get(key)[0]
      if (first !== undefined) out[key] = first
    }
    return out
  }
}

export function metadataOf (headers: IncomingHttpHeaders): CallMetadata {
  return new CallMetadata(headers)
}

/** Anything with grpc-js Metadata's `getMap` (the handlers' trailers, an error's metadata). */
export interface MetadataLike {
  getMap: () => Record<string, unknown>
}

/** Response metadata as headers: lowercase keys, `-bin` values base64, reserved names dropped. */
export function headersOf (md: MetadataLike | undefined, into: OutgoingHttpHeaders): OutgoingHttpHeaders {
  if (md === undefined || typeof md.getMap !== 'function') return into
  for (const [k, v] of Object.entries(md.getMap())) {
    const key = k.toLowerCase()
    if (RESERVED.has(key) || key.startsWith('grpc-') || key.startsWith(':')) continue
    if (key.endsWith('-bin')) into[key] = Buffer.isBuffer(v) ? v.toString('base64') : Buffer.from(String(v)).toString('base64')
    else into[key] = String(v)
  }
  return into
}
