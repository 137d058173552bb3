/**
 * Cutting a string to a number of UTF-8 bytes, for whatever repeats a client's text: error
 * messages (common/errors.ts), log fields, gRPC status messages. The cut falls on a
 * character boundary (never inside a UTF-8 sequence or a surrogate pair) and a cut string
 * ends with `TRUNCATED`, so the whole result, marker included, fits in the bytes asked for.
 *
 * Only the kept prefix is read: a multi-megabyte string costs no more than a short one.
 */

/** What ends a string that was cut. */
export const TRUNCATED = '…(truncated)'
const TRUNCATED_BYTES = Buffer.byteLength(TRUNCATED)

/** UTF-8 bytes of `s` if they are at most `maxBytes`, else -1; reads at most `maxBytes` code units. */
function utf8BytesUpTo (s: string, maxBytes: number): number {
  if (s.length > maxBytes) return -1 // every UTF-16 code unit is at least one byte of UTF-8
  if (s.length * 3 <= maxBytes) return 0 // at most three bytes per code unit (a surrogate pair: four for two)
  const bytes = Buffer.byteLength(s, 'utf8')
  return bytes <= maxBytes ? bytes : -1
}

/** Whether `s` takes more than `maxBytes` bytes of UTF-8. */
export function longerThan (s: string, maxBytes: number): boolean {
  return utf8BytesUpTo(s, maxBytes) === -1
}

/** `s` if it fits in `maxBytes` bytes of UTF-8; else its longest prefix that fits with `TRUNCATED` after it. */
export function truncateUtf8 (s: string, maxBytes: number): string {
  if (!longerThan(s, maxBytes)) return s
  const room = maxBytes - TRUNCATED_BYTES
  let bytes = 0
  let i = 0
  while (i < s.length) {
    const c = s.charCodeAt(i)
    let width = 3
    let units = 1
    if (c < 0x80) width = 1
    else if (c < 0x800) width = 2
    else if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) { width = 4; units = 2 } // a pair; a lone surrogate is written as U+FFFD (3 bytes)
    }
    if (bytes + width > room) break
    bytes += width
    i += units
  }
  return i <= 0 ? TRUNCATED : s.slice(0, i) + TRUNCATED
}
