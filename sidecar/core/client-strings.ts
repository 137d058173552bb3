/**
 * How long the strings a client names things with may be, and how much of one the sidecar
 * ever repeats. A request `id` is echoed in the answer; names and keys end up in error
 * messages and log lines. Past its limit such a string is a 400 whose message shows only
 * its first `PREVIEW_BYTES`, so nothing a client sends is copied whole into an answer, a
 * message or the log (docs/api.md, "Limits on names and ids").
 *
 * Every limit is in bytes of UTF-8, as the string travels on the wire.
 */
import { MAX_MESSAGE_BYTES } from '../../common/errors.js'
import { longerThan, truncateUtf8 } from '../../common/truncate.js'
import { errors, type SidecarError } from './errors.js'

/** Tensor names (inputs, outputs), the model name and version of a gRPC request. */
export const MAX_NAME_BYTES = 256
/** The request's `id`, echoed in its answer. */
export const MAX_ID_BYTES = 256
/** Keys of `parameters` (the request's, an input's, an output's). */
export const MAX_PARAMETER_KEY_BYTES = 256
/** Characters of a client's request id (`x-request-id`) kept for the log; a longer one is replaced by ours. */
export const MAX_REQUEST_ID_LENGTH = 128
/** What a 400 shows of a string past its limit. */
export const PREVIEW_BYTES = 64
/** Error messages (REST `error`, gRPC status message, the log's `reason`); set in the error factory. */
export { MAX_MESSAGE_BYTES }

/** A client's string as messages and log lines show it: at most `maxBytes`, cut with a marker. */
export function shown (s: string, maxBytes = PREVIEW_BYTES): string {
  return truncateUtf8(s, maxBytes)
}

/** The 400 for `what` (e.g. `inputs[0].name`) past `maxBytes`, showing the start of `value`. */
export function tooLong (what: string, value: string, maxBytes: number): SidecarError {
  return errors.BAD_REQUEST(`${what} is longer than ${maxBytes} bytes: '${shown(value)}'`)
}

/** Throws `tooLong` when `value` takes more than `maxBytes` bytes of UTF-8. */
export function checkLength (what: string, value: string, maxBytes: number): void {
  if (longerThan(value, maxBytes)) throw tooLong(what, value, maxBytes)
}

/** Throws `tooLong` for the first key of `params` past the parameter key limit. */
export function checkParameterKeys (what: string, params: Record<string, unknown> | undefined): void {
  if (params === undefined) return
  for (const key of Object.keys(params)) checkLength(`a key of ${what}`, key, MAX_PARAMETER_KEY_BYTES)
}
