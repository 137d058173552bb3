/**
 * The JSON part of an inference request, parsed with its memory bounded.
 *
 * `JSON.parse` turns every element of a tensor into a JS value (8–40 bytes each) and
 * every `{}` into an object, so a 16 MiB body can cost hundreds of MB of heap before
 * anything checks it. This parser builds ordinary JS values for the small, structural
 * part of a request (`id`, `parameters`, `outputs`, the input headers) and, for each
 * `inputs[i].data`, only validates and counts the elements, keeping a `TensorText`: the
 * byte range of the array in the body. The caller then decodes it once, straight into a
 * typed array of the right datatype and size, after checking that the memory it takes
 * fits (see `infer-request.ts`).
 *
 * Limits, each a 400 that names it: nesting depth (`MAX_DEPTH`; also guards against the
 * stack), and the number of JS values outside tensor data (`MAX_VALUES`). Pure: bytes in,
 * values out, nothing else touched.
 */

import { NestedShape, type Nesting } from './nested-shape.js'

/** Deepest nesting of arrays and objects, tensor data included. */
export const MAX_DEPTH = 64
/** JS values (objects, arrays, strings, numbers, literals) outside `inputs[].data`. */
export const MAX_VALUES = 10_000

/** Not JSON: `message` says what and where. */
export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError'
}

/** Valid JSON past one of the limits above. */
export class JsonLimitError extends Error {
  override name = 'JsonLimitError'
}

/** A value inside tensor data that is not a number, string or boolean (shown in error messages only). */
export class OtherValue {
  constructor (readonly preview: string) {}
}

/** What a leaf reader hands out, one element at a time, in row-major order. */
export interface Leaves {
  readonly count: number
  /** The next element: number, string, boolean, null or an `OtherValue`. */
  next: () => unknown
}

const PREVIEW = 40

/** The validated text of one `inputs[i].data` array; decoded later, straight into a typed array. */
export class TensorText {
  /** Leaf elements (nested arrays flattened, row-major). */
  readonly count: number
  /** Bytes of string elements' text, escapes included (an upper bound of their UTF-16 length). */
  readonly stringBytes: number
  /** How the array nests: its dims, or why it is ragged. */
  readonly nesting: Nesting
  readonly #buf: Buffer
  readonly #start: number
  readonly #end: number

  constructor (buf: Buffer, start: number, end: number, count: number, stringBytes: number, nesting: Nesting) {
    this.#buf = buf
    this.#start = start
    this.#end = end
    this.count = count
    this.stringBytes = stringBytes
    this.nesting = nesting
  }

  /** A reader over the leaves; valid JSON is guaranteed, so it only has to find them. */
  leaves (): Leaves {
    return new LeafReader(this.#buf, this.#start, this.#end, this.count)
  }
}

class LeafReader implements Leaves {
  readonly count: number
  #buf: Buffer
  #pos: number
  #end: number

  constructor (buf: Buffer, start: number, end: number, count: number) {
    this.#buf = buf
    this.#pos = start
    this.#end = end
    this.count = count
  }

  next (): unknown {
    const buf = this.#buf
    let p = this.#pos
    let c = buf[p] as number
    // Skip structure: whitespace, commas and brackets.
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x2c || c === 0x5b || c === 0x5d) c = buf[++p] as number
    if (p >= this.#end) throw new Error('read past the last element') // a bug: count said there was one more
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const end = numberEnd(buf, p)
      this.#pos = end
      return numberValue(buf, p, end)
    }
    if (c === 0x22) {
      const end = stringEnd(buf, p)
      this.#pos = end
      return stringValue(buf, p, end)
    }
    if (c === 0x74) { this.#pos = p + 4; return true }
    if (c === 0x66) { this.#pos = p + 5; return false }
    if (c === 0x6e) { this.#pos = p + 4; return null }
    // An object: skip it whole, keep a short preview for the error message.
    const end = skipComposite(buf, p)
    this.#pos = end
    return new OtherValue(preview(buf, p, end))
  }
}

function preview (buf: Buffer, start: number, end: number): string {
  const text = buf.toString('utf8', start, Math.min(end, start + PREVIEW))
  return end - start > PREVIEW ? `${text}…` : text
}

/** Where the number starting at `p` ends (validated already). */
function numberEnd (buf: Buffer, p: number): number {
  let c = buf[p] as number
  while (c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45 || (c >= 0x30 && c <= 0x39)) c = buf[++p] as number
  return p
}

const POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]

/**
 * The value of a valid JSON number. Exact: up to 15 significant digits and a decimal
 * exponent within ±22, mantissa and power of ten are both exact doubles, so one multiply
 * or divide rounds correctly (Clinger's fast path); anything else goes to `Number()`.
 */
function numberValue (buf: Buffer, start: number, end: number): number {
  let p = start
  const negative = buf[p] === 0x2d
  if (negative) p++
  let mantissa = 0
  let digits = 0
  let scale = 0
  let c = buf[p] as number
  while (c >= 0x30 && c <= 0x39) {
    mantissa = mantissa * 10 + (c - 0x30)
    if (mantissa !== 0) digits++
    c = buf[++p] as number
  }
  if (c === 0x2e) {
    c = buf[++p] as number
    while (c >= 0x30 && c <= 0x39) {
      mantissa = mantissa * 10 + (c - 0x30)
      if (mantissa !== 0) digits++
      scale--
      c = buf[++p] as number
    }
  }
  if (p !== end || digits > 15 || scale < -22) return Number(buf.toString('latin1', start, end))
  const value = scale === 0 ? mantissa : mantissa / (POW10[-scale] as number)
  return negative ? -value : value
}

/** Where the string whose opening quote is at `p` ends (one past the closing quote). */
function stringEnd (buf: Buffer, p: number): number {
  p++
  for (;;) {
    const c = buf[p] as number
    if (c === 0x22) return p + 1
    p += c === 0x5c ? 2 : 1
  }
}

/** The string whose quotes are at `start` and `end - 1` (validated); escapes are left to JSON.parse. */
function stringValue (buf: Buffer, start: number, end: number, escaped = buf.subarray(start + 1, end - 1).includes(0x5c)): string {
  return escaped ? JSON.parse(buf.toString('utf8', start, end)) as string : buf.toString('utf8', start + 1, end - 1)
}

/** Skips a validated object or array starting at `p`; returns one past its end. */
function skipComposite (buf: Buffer, p: number): number {
  let depth = 0
  for (;;) {
    const c = buf[p] as number
    if (c === 0x22) { p = stringEnd(buf, p); continue }
    if (c === 0x7b || c === 0x5b) depth++
    else if (c === 0x7d || c === 0x5d) {
      depth--
      if (depth === 0) return p + 1
    }
    p++
  }
}

// ---- the parser -------------------------------------------------------------

/** Where in a request the parser is: tensor data is recognised by its path. */
const enum At { Other, Root, Inputs, Input }

class Parser {
  #buf: Buffer
  #pos = 0
  #values = 0
  #escaped = false

  constructor (buf: Buffer) {
    this.#buf = buf
  }

  parse (): unknown {
    this.#ws()
    const value = this.#value(0, At.Root)
    this.#ws()
    if (this.#pos < this.#buf.length) this.#fail('unexpected data after the JSON value')
    return value
  }

  #fail (what: string): never {
    throw new JsonSyntaxError(`${what} at byte ${this.#pos}`)
  }

  #count (): void {
    if (++this.#values > MAX_VALUES) throw new JsonLimitError(`more than ${MAX_VALUES} JSON values outside inputs[].data`)
  }

  #ws (): void {
    const buf = this.#buf
    let p = this.#pos
    let c = buf[p]
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++p]
    this.#pos = p
  }

  #value (depth: number, at: At): unknown {
    const c = this.#buf[this.#pos]
    this.#count()
    switch (c) {
      case 0x7b: return this.#object(depth + 1, at)
      case 0x5b: return this.#array(depth + 1, at)
      case 0x22: return this.#string()
      case 0x74: return this.#literal('true', true)
      case 0x66: return this.#literal('false', false)
      case 0x6e: return this.#literal('null', null)
      case undefined: return this.#fail('unexpected end of input')
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
          const start = this.#pos
          this.#pos = this.#number(start)
          return numberValue(this.#buf, start, this.#pos)
        }
        return this.#fail(`unexpected character '${String.fromCharCode(c)}'`)
    }
  }

  #literal<T> (word: string, value: T): T {
    const buf = this.#buf
    for (let i = 0; i < word.length; i++) {
      if (buf[this.#pos + i] !== word.charCodeAt(i)) this.#fail(`invalid literal (expected ${word})`)
    }
    this.#pos += word.length
    return value
  }

  /** Validates the number at `p` (JSON grammar) and returns where it ends. */
  #number (p: number): number {
    const buf = this.#buf
    if (buf[p] === 0x2d) p++
    let c = buf[p] as number
    if (c === 0x30) {
      c = buf[++p] as number
    } else if (c >= 0x31 && c <= 0x39) {
      while (c >= 0x30 && c <= 0x39) c = buf[++p] as number
    } else {
      this.#pos = p
      this.#fail('invalid number')
    }
    if (c === 0x2e) {
      c = buf[++p] as number
      if (!(c >= 0x30 && c <= 0x39)) { this.#pos = p; this.#fail('invalid number (no digit after the decimal point)') }
      while (c >= 0x30 && c <= 0x39) c = buf[++p] as number
    }
    if (c === 0x65 || c === 0x45) {
      c = buf[++p] as number
      if (c === 0x2b || c === 0x2d) c = buf[++p] as number
      if (!(c >= 0x30 && c <= 0x39)) { this.#pos = p; this.#fail('invalid number (no digit in the exponent)') }
      while (c >= 0x30 && c <= 0x39) c = buf[++p] as number
    }
    return p
  }

  /** Validates the string at the cursor; returns where it ends (and sets #escaped). */
  #scanString (): number {
    const buf = this.#buf
    let p = this.#pos + 1
    let escaped = false
    for (;;) {
      const c = buf[p]
      if (c === 0x22) { this.#escaped = escaped; return p + 1 }
      if (c === undefined) { this.#pos = p; this.#fail('unterminated string') }
      if (c < 0x20) { this.#pos = p; this.#fail('control character in a string') }
      if (c === 0x5c) {
        escaped = true
        const e = buf[p + 1]
        if (e === 0x75) {
          for (let i = 2; i < 6; i++) {
            const h = buf[p + i] as number
            if (!((h >= 0x30 && h <= 0x39) || (h >= 0x41 && h <= 0x46) || (h >= 0x61 && h <= 0x66))) { this.#pos = p; this.#fail('invalid \\u escape') }
          }
          p += 6
          continue
        }
        if (e !== 0x22 && e !== 0x5c && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) { this.#pos = p; this.#fail('invalid escape') }
        p += 2
        continue
      }
      p++
    }
  }

  #string (): string {
    const start = this.#pos
    const end = this.#scanString()
    this.#pos = end
    return stringValue(this.#buf, start, end, this.#escaped)
  }

  #object (depth: number, at: At): Record<string, unknown> {
    if (depth > MAX_DEPTH) throw new JsonLimitError(`JSON nested deeper than ${MAX_DEPTH} levels`)
    const out: Record<string, unknown> = {}
    this.#pos++
    this.#ws()
    if (this.#buf[this.#pos] === 0x7d) { this.#pos++; return out }
    for (;;) {
      if (this.#buf[this.#pos] !== 0x22) this.#fail('expected a string key')
      const key = this.#string()
      this.#ws()
      if (this.#buf[this.#pos] !== 0x3a) this.#fail("expected ':'")
      this.#pos++
      this.#ws()
      let value: unknown
      if (at === At.Input && key === 'data' && this.#buf[this.#pos] === 0x5b) {
        value = this.#tensorData(depth)
      } else {
        value = this.#value(depth, at === At.Root && key === 'inputs' ? At.Inputs : At.Other)
      }
      // JSON.parse makes "__proto__" an own property; plain assignment would set the prototype.
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true })
      else out[key] = value
      this.#ws()
      const c = this.#buf[this.#pos]
      this.#pos++
      if (c === 0x7d) return out
      if (c !== 0x2c) { this.#pos--; this.#fail("expected ',' or '}'") }
      this.#ws()
    }
  }

  #array (depth: number, at: At): unknown[] {
    if (depth > MAX_DEPTH) throw new JsonLimitError(`JSON nested deeper than ${MAX_DEPTH} levels`)
    const out: unknown[] = []
    this.#pos++
    this.#ws()
    if (this.#buf[this.#pos] === 0x5d) { this.#pos++; return out }
    for (;;) {
      out.push(this.#value(depth, at === At.Inputs ? At.Input : At.Other))
      this.#ws()
      const c = this.#buf[this.#pos]
      this.#pos++
      if (c === 0x5d) return out
      if (c !== 0x2c) { this.#pos--; this.#fail("expected ',' or ']'") }
      this.#ws()
    }
  }

  /**
   * Validates the array at the cursor as tensor data without building it: counts its
   * leaves (nested arrays are flattened) and the bytes of its strings, and finds how it
   * nests (`NestedShape`).
   */
  #tensorData (depth: number): TensorText {
    this.#count()
    const buf = this.#buf
    const start = this.#pos
    let count = 0
    let stringBytes = 0
    let level = 0
    const nesting = new NestedShape()
    let length = 0 // elements so far in the innermost open array
    const outer: number[] = [] // the same for the arrays around it
    // OPEN: just after '[' (an element or ']'); NEXT: after ',' (an element); AFTER: after an element (',' or ']').
    const OPEN = 0; const NEXT = 1; const AFTER = 2
    let state = NEXT
    for (;;) {
      this.#ws()
      const c = buf[this.#pos]
      if (state === AFTER) {
        if (c === 0x2c) { this.#pos++; state = NEXT; continue }
        if (c !== 0x5d) this.#fail("expected ',' or ']'")
      }
      if (c === 0x5d && state !== NEXT) {
        this.#pos++
        nesting.close(level, length)
        if (--level === 0) return new TensorText(buf, start, this.#pos, count, stringBytes, nesting.result())
        length = outer.pop() as number
        state = AFTER
        continue
      }
      if (c === 0x5b) {
        if (depth + level + 1 > MAX_DEPTH) throw new JsonLimitError(`JSON nested deeper than ${MAX_DEPTH} levels`)
        if (++level > 1) {
          outer.push(length + 1)
          length = 0
          nesting.open(level)
        }
        this.#pos++
        state = OPEN
        continue
      }
      if (c === 0x22) {
        const end = this.#scanString()
        stringBytes += end - this.#pos - 2
        this.#pos = end
      } else if (c === 0x7b) {
        // Not tensor data; validated (bounded like everything else) and reported by the decoder.
        this.#count()
        this.#object(depth + level + 1, At.Other)
      } else if (c === 0x74) {
        this.#literal('true', true)
      } else if (c === 0x66) {
        this.#literal('false', false)
      } else if (c === 0x6e) {
        this.#literal('null', null)
      } else if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) {
        this.#pos = this.#number(this.#pos)
      } else if (c === undefined) {
        this.#fail('unexpected end of input')
      } else {
        this.#fail(`unexpected character '${String.fromCharCode(c)}'`)
      }
      count++
      length++
      if (level !== nesting.valueDepth) nesting.value(level)
      state = AFTER
    }
  }
}

/**
 * Parses a request's JSON from bytes (UTF-8). Throws `JsonSyntaxError` for anything
 * `JSON.parse` would reject and `JsonLimitError` past the limits; `inputs[i].data`
 * arrays come back as `TensorText`.
 */
export function parseRequestJson (buf: Buffer): unknown {
  return new Parser(buf).parse()
}

