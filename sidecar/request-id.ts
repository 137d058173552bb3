/** The id a request is logged under: the client's (`x-request-id` header or metadata) when usable, else one of ours. */

/** Characters of a client's request id kept; a longer one is replaced by ours. */
export const MAX_REQUEST_ID_LENGTH = 128

export function requestIdOf (given: unknown, ours: () => string): string {
  return typeof given === 'string' && given.length <= MAX_REQUEST_ID_LENGTH ? given : ours()
}
