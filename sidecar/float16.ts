/** IEEE 754 half precision <-> number, for FP16 tensors in JSON (ONNX Runtime hands out raw bits). */
const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

export function halfToNumber (h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const frac = h & 0x3ff
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024)
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN
  return sign * 2 ** (exp - 15) * (1 + frac / 1024)
}

export function numberToHalf (value: number): number {
  f32[0] = value
  const x = u32[0] as number
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0)
  const e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mant = (mant | 0x800000) >> (1 - e)
    return sign | ((mant + 0x1000) >> 13)
  }
  const half = sign | (e << 10) | (mant >> 13)
  // round to nearest even
  const rest = mant & 0x1fff
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) return half + 1
  return half
}
