/**
 * Reads a request body with the sidecar's errors and memory accounting, and splits
 * Triton's binary tensor extension (`Inference-Header-Content-Length`: a JSON header,
 * then raw tensors).
 */
import type { IncomingMessage } from 'node:http'
import { readBody, type BodyCost, type BodyErrors } from '../../common/read-body.js'
import { jsonCost, type JsonCost } from '../../common/json-cost.js'
import { errors } from '../core/errors.js'
import { JsonLimitError, MAX_VALUES, parseRequestJson } from '../codec/json-scanner.js'
import type { RequestLease } from '../codec/request-memory.js'
import { AbandonedError } from '../core/errors.js'

/**
 * JSON parts up to this size go to `JSON.parse` (fastest for small requests; the heap it
 * builds is at most `SMALL_JSON_AMPLIFICATION` times the text); larger ones to the bounded
 * parser in `request-json.ts`, which never makes a JS value per tensor element.
 */
export const SMALL_JSON = 64 * 1024 // 64 KiB
/** Worst heap per byte of JSON text that `JSON.parse` builds (`[{},{},...]`, `[[0],[0],...]`), measured at ~11 on Node 20. */
const SMALL_JSON_AMPLIFICATION = 16
/** Heap for the values the bounded parser may build outside tensor data. */
const STRUCTURE_BYTES = MAX_VALUES * 64

const bodyErrors = (limit: number): BodyErrors => ({
  tooLarge: () => errors.BODY_TOO_LARGE(limit),
  // Nobody is left to answer: the request is dropped like one abandoned in the queue (499).
  hungUp: () => new AbandonedError()
})

/** A small JSON part (`JSON.parse`): the body, plus the most heap `JSON.parse` builds per byte. */
const SMALL_JSON_COST: JsonCost = Object.freeze({ fixed: 0, perByte: 1 + SMALL_JSON_AMPLIFICATION, perContainer: 0, perSeparator: 0 })
/** A large JSON part (the bounded parser) or a binary body: the body, plus the values the parser may build outside tensor data. */
const BOUNDED_COST: JsonCost = Object.freeze({ fixed: STRUCTURE_BYTES, perByte: 1, perContainer: 0, perSeparator: 0 })

/**
 * What reading and parsing a body of `length` bytes costs, before any tensor is decoded
 * (common/json-cost.ts, from the length alone, so it is known before a byte is read): the
 * body itself, plus what parsing its JSON part builds (a binary body's tensors are charged
 * when they are copied out of it).
 */
function bodyCost (length: number, binary: boolean): number {
  return jsonCost(binary || length > SMALL_JSON ? BOUNDED_COST : SMALL_JSON_COST, length)
}

/**
 * Reads the body; with a lease, its bytes are charged before they are kept (a declared
 * `content-length` is charged whole, parsing included, before anything is read; a chunked
 * body chunk by chunk, then what parsing it adds).
 */
export async function readRequestBody (req: IncomingMessage, limit: number, lease?: RequestLease): Promise<Buffer> {
  return await readBody(req, limit, bodyErrors(limit), lease === undefined ? {} : leaseCost(lease, req.headers['inference-header-content-length'] !== undefined))
}

/** A body's cost, charged to the request's lease: `bodyCost`. */
function leaseCost (lease: RequestLease, binary: boolean): BodyCost {
  return {
    start: declared => {
      if (declared === undefined) return false
      lease.charge(bodyCost(declared, binary))
      return true
    },
    chunk: bytes => { lease.charge(bytes) },
    end: body => { lease.charge(bodyCost(body.length, binary) - body.length) }
  }
}

export interface ParsedBody {
  json: unknown
  binary: Uint8Array | undefined
}

export function parseInferBody (body: Buffer, headerLength: string | string[] | undefined, smallJson = SMALL_JSON): ParsedBody {
  let jsonPart = body
  let binary: Uint8Array | undefined
  if (headerLength !== undefined) {
    const raw = Array.isArray(headerLength) ? headerLength[0] : headerLength
    const n = Number(raw)
    if (!/^\d+$/.test(raw ?? '') || n > body.length) {
      throw errors.BAD_BINARY(`Inference-Header-Content-Length '${raw}' must be an integer between 0 and the body size (${body.length})`)
    }
    jsonPart = body.subarray(0, n)
    binary = body.subarray(n)
  }
  if (jsonPart.length === 0) throw errors.BAD_JSON('the body is empty')
  try {
    if (jsonPart.length > smallJson) return { json: parseRequestJson(jsonPart), binary }
    // V8's JSON.parse is not recursive: deep nesting cannot overflow the stack here, and
    // the only walk of nested values after it (tensor data) stops at MAX_DEPTH.
    return { json: JSON.parse(jsonPart.toString('utf8')), binary }
  } catch (err) {
    if (err instanceof JsonLimitError) throw errors.JSON_LIMIT(err.message)
    throw errors.BAD_JSON((err as Error).message)
  }
}
