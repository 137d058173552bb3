/**
 * The error factory both sides use. `sidecar/core/errors.ts` and `injector/errors.ts` each list
 * their errors with `define(code, status, message)`: a stable code (`OS_ERR_...`), the HTTP
 * status, and a function from the error's arguments to its message (and, optionally, to
 * the headers its HTTP answer carries). Each side has its own subclass of `CodedError`, so
 * `instanceof SidecarError` / `instanceof InjectorError` still tells them apart.
 *
 * Over HTTP every such error is answered with `errorBody(err)`:
 * `{"error": "<message>", "code": "<code>"}` — the protocol's `error` message, and the
 * stable code a client can branch on (overload and not-ready are both 503).
 *
 * A message is at most `MAX_MESSAGE_BYTES` bytes of UTF-8: each string argument is cut to
 * half of that before the message is built (so a client's multi-megabyte name is never
 * copied into it), and the message itself after; a cut string ends with `…(truncated)`. Whatever repeats
 * a message (an HTTP body, a gRPC status, a log line) is therefore bounded too.
 */
import { truncateUtf8 } from './truncate.js'

/** Longest error message, in bytes of UTF-8 (marker included); documented in docs/api.md. */
export const MAX_MESSAGE_BYTES = 1024

/** Longest string argument of a message: half the message, so what surrounds it usually survives. */
const MAX_ARGUMENT_BYTES = MAX_MESSAGE_BYTES / 2

/** `v` cut to the argument limit when it is a string. */
const bounded = (v: unknown): unknown => (typeof v === 'string' ? truncateUtf8(v, MAX_ARGUMENT_BYTES) : v)

export class CodedError extends Error {
  readonly code: string
  readonly statusCode: number
  readonly headers: Record<string, string>

  constructor (code: string, statusCode: number, message: string, headers: Record<string, string> = {}) {
    super(truncateUtf8(message, MAX_MESSAGE_BYTES))
    this.name = 'CodedError'
    this.code = code
    this.statusCode = statusCode
    this.headers = headers
  }
}

/** A constructor of one side's error class. */
export type CodedErrorClass<E extends CodedError> = new (code: string, statusCode: number, message: string, headers?: Record<string, string>) => E

/** Makes the error with its arguments; carries its code and status for tables and tests. */
export type ErrorFactory<E extends CodedError, A extends unknown[]> = ((...args: A) => E) & { code: string, statusCode: number }

/** The `define` of one side: every error it makes is an instance of `Class`. */
export function errorDefiner<E extends CodedError> (Class: CodedErrorClass<E>) {
  return function define<A extends unknown[]> (code: string, statusCode: number, message: (...args: A) => string, headers?: (...args: A) => Record<string, string>): ErrorFactory<E, A> {
    const make = (...given: A): E => {
      const args = given.map(bounded) as A
      return new Class(code, statusCode, message(...args), headers?.(...args))
    }
    return Object.assign(make, { code, statusCode })
  }
}

/** The JSON body of an HTTP error answer. */
export interface ErrorBody { error: string, code: string }

export function errorBody (err: Pick<CodedError, 'message' | 'code'>): ErrorBody {
  return { error: err.message, code: err.code }
}
