/**
 * The one estimate of what a JSON body costs in memory once it is parsed, for the sidecar
 * (sidecar/http/body.ts) and the webhook (injector/review-body.ts); each side plugs in its
 * own `JsonCost`.
 *
 * cost = fixed + bytes x perByte + containers x perContainer + separators x perSeparator
 *
 * A cost with no per-item terms is a bound from the length alone, known before a byte is
 * read and free to compute: the sidecar's, whose small JSON bodies are charged at the worst
 * heap per byte `JSON.parse` builds (its large ones go to a bounded parser). A cost with
 * per-item terms needs the body's shape (`measureJson`, one pass over the bytes after they
 * arrived): the webhook's, because its reviews are up to 4 MiB and a bound per byte would
 * charge a real pod of long strings as much as 4 MiB of `[{},{},…]`.
 */

/** What a body costs per byte and per structural item, plus a fixed part. */
export interface JsonCost {
  /** Bytes charged once, whatever the body. */
  fixed: number
  /** Bytes per byte of the body. */
  perByte: number
  /** Bytes per object or array; 0 when the shape is not measured. */
  perContainer: number
  /** Bytes per `,` or `:` outside strings; 0 when the shape is not measured. */
  perSeparator: number
}

export interface JsonShape {
  /** Deepest nesting seen, counting from 1 for the outer object; stops counting above the limit. */
  depth: number
  /** Objects and arrays. */
  containers: number
  /** `,` and `:` outside strings (members and elements). */
  separators: number
}

/** True when `cost` charges per item, so the body must be measured (`measureJson`) first. */
export function needsShape (cost: JsonCost): boolean {
  return cost.perContainer !== 0 || cost.perSeparator !== 0
}

/**
 * Estimated peak bytes of `size` bytes of JSON under `cost`. `shape` is required when
 * `needsShape(cost)`; without it the per-item terms would be silently left out.
 */
export function jsonCost (cost: JsonCost, size: number, shape?: JsonShape): number {
  let bytes = cost.fixed + size * cost.perByte
  if (needsShape(cost)) {
    if (shape === undefined) throw new Error('jsonCost: this cost charges per item and needs the body\'s shape (measureJson)')
    bytes += shape.containers * cost.perContainer + shape.separators * cost.perSeparator
  }
  return bytes
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_BRACE = 0x7b
const OPEN_BRACKET = 0x5b
const CLOSE_BRACE = 0x7d
const CLOSE_BRACKET = 0x5d
const COMMA = 0x2c
const COLON = 0x3a

/**
 * One pass over JSON bytes, skipping strings: nesting depth and item counts. Stops as
 * soon as the nesting passes `maxDepth` (the caller refuses the body then). Bytes of
 * multi-byte UTF-8 characters are all >= 0x80, so they never look like structure.
 */
export function measureJson (bytes: Uint8Array, maxDepth: number): JsonShape {
  let depth = 0
  let deepest = 0
  let containers = 0
  let separators = 0
  let inString = false
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
      continue
    }
    if (c === QUOTE) {
      inString = true
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      containers++
      depth++
      if (depth > deepest) {
        deepest = depth
        if (deepest > maxDepth) break
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--
    } else if (c === COMMA || c === COLON) {
      separators++
    }
  }
  return { depth: deepest, containers, separators }
}
