/** The id a request is logged under: the client's (`x-request-id` header or metadata) when usable, else one of ours. */

import { MAX_REQUEST_ID_LENGTH } from '../core/client-strings.js'

/** Characters of a client's request id kept; a longer one is replaced by ours (the limits: client-strings.ts). */
export { MAX_REQUEST_ID_LENGTH }

export function requestIdOf (given: unknown, ours: () => string): string {
  return typeof given === 'string' && given.length <= MAX_REQUEST_ID_LENGTH ? given : ours()
}
