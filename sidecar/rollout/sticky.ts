/**
 * Canary assignment: a key (the request `id`, or a header the app sets) always lands on
 * the same side. 32-bit FNV-1a over the UTF-16 code units of `salt` + key, then
 * MurmurHash3's 32-bit finaliser (FNV-1a alone spreads keys that differ in their last
 * characters, `user-1`, `user-2`, ..., unevenly over the high bits), mapped onto [0, 1):
 * stable across requests, restarts and replicas, no state kept per key.
 */

/** 32-bit FNV-1a of a string (code units), as an unsigned integer. */
export function fnv1a (text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** MurmurHash3's fmix32: every input bit affects every output bit. */
export function fmix32 (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The key's place in [0, 1); the same key and salt always give the same number. */
export function bucketOf (salt: string, key: string): number {
  return fmix32(fnv1a(`${salt}\u0000${key}`)) / 2 ** 32
}

/** True when the key belongs to the candidate's share. */
export function inCanary (salt: string, key: string, share: number): boolean {
  return bucketOf(salt, key) < share
}
