/**
 * The error factory both sides use. `sidecar/errors.ts` and `injector/errors.ts` each list
 * their errors with `define(code, status, message)`: a stable code (`OS_ERR_...`), the HTTP
 * status, and a function from the error's arguments to its message (and, optionally, to
 * the headers its HTTP answer carries). Each side has its own subclass of `CodedError`, so
 * `instanceof SidecarError` / `instanceof InjectorError` still tells them apart.
 *
 * Over HTTP every such error is answered with `errorBody(err)`:
 * `{"error": "<message>", "code": "<code>"}` — the protocol's `error` message, and the
 * stable code a client can branch on (overload and not-ready are both 503).
 */

export class CodedError extends Error {
  readonly code: string
  readonly statusCode: number
  readonly headers: Record<string, string>

  constructor (code: string, statusCode: number, message: string, headers: Record<string, string> = {}) {
    super(message)
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
    const make = (...args: A): E => new Class(code, statusCode, message(...args), headers?.(...args))
    return Object.assign(make, { code, statusCode })
  }
}

/** The JSON body of an HTTP error answer. */
export interface ErrorBody { error: string, code: string }

export function errorBody (err: Pick<CodedError, 'message' | 'code'>): ErrorBody {
  return { error: err.message, code: err.code }
}
