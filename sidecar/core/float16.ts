/** IEEE 754 half precision <-> number, for FP16 tensors in JSON (ONNX Runtime hands out raw bits). */

export function halfToNumber (h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const frac = h & 0x3ff
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024)
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN
  return sign * 2 ** (exp - 15) * (1 + frac / 1024)
}

/** 2^52: adding then subtracting it rounds a non-negative double below 2^52 to an integer, ties to even. */
const ROUND = 2 ** 52
/** Halfway between the largest half (65504) and 2^16: from here up a value rounds to Infinity. */
const OVERFLOW = 65520
/** `SCALE[e + 14]` = 2^(10 - e): for a in [2^e, 2^(e+1)), e = -14..15, a * SCALE is the mantissa in units of one half ulp (1024..2048). */
const SCALE = Array.from({ length: 30 }, (_, i) => 2 ** (24 - i))

const f64 = new Float64Array(1)
const u32 = new Uint32Array(f64.buffer)
/** Index of the 32 bits holding a double's sign and exponent (1 on little-endian machines). */
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0

/**
 * The half nearest to `value`, ties to even (IEEE 754 roundTiesToEven), rounded once from
 * the double: the value is scaled by a power of two (exact) so that one half ulp becomes 1,
 * and that one rounding to an integer is the only one. A carry out of the mantissa moves
 * to the exponent by itself (1023.5 subnormal units -> 0x0400; 65520 -> Infinity).
 */
export function numberToHalf (value: number): number {
  f64[0] = value
  const high = u32[HIGH] as number
  const sign = (high >>> 16) & 0x8000
  const e = ((high >>> 20) & 0x7ff) - 1023
  if (e === 1024) return Number.isNaN(value) ? 0x7e00 : sign | 0x7c00
  const a = sign === 0 ? value : -value
  if (a >= OVERFLOW) return sign | 0x7c00
  // Below 2^-14 (subnormal): in units of 2^-24; below 2^-25 this is 0.
  if (e < -14) return sign | ((a * 2 ** 24 + ROUND) - ROUND)
  const m = (a * (SCALE[e + 14] as number) + ROUND) - ROUND
  return sign | (((e + 15) << 10) + m - 1024)
}
