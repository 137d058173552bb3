import t, { type Test } from 'tap'
import { halfToNumber, numberToHalf } from '../../../sidecar/core/float16.js'

t.test('FP16 bits round-trip the values a half can hold', async t => {
  const cases: Array<[number, number]> = [
    [0, 0x0000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff],
    [2 ** -14, 0x0400], [2 ** -24, 0x0001], [Infinity, 0x7c00], [-Infinity, 0xfc00]
  ]
  for (const [value, bits] of cases) {
    t.equal(numberToHalf(value), bits, `${value} -> 0x${bits.toString(16)}`)
    t.equal(halfToNumber(bits), value, `0x${bits.toString(16)} -> ${value}`)
  }
  t.ok(Number.isNaN(halfToNumber(numberToHalf(NaN))), 'NaN stays NaN')
  t.equal(numberToHalf(-0), 0x8000, '-0 keeps its sign')
  t.equal(numberToHalf(1e6), 0x7c00, 'overflow becomes Infinity')
  t.equal(numberToHalf(1e-9), 0, 'underflow becomes 0')
  t.equal(halfToNumber(numberToHalf(0.1)), 0.0999755859375, '0.1 rounds to the nearest half')
  t.equal(numberToHalf(1 + 2 ** -11), 0x3c00, 'a tie rounds to even')
  t.equal(numberToHalf(1 + 3 * 2 ** -11), 0x3c02, 'a tie rounds to even (up)')
  // Rounded through float32 first, these landed on the tie and went to even: one ulp off.
  t.equal(numberToHalf(1 + 2 ** -11 + 2 ** -40), 0x3c01, 'just above a tie rounds up (no double rounding)')
  t.equal(numberToHalf(1 + 3 * 2 ** -11 - 2 ** -40), 0x3c01, 'just below a tie rounds down (no double rounding)')
  t.equal(numberToHalf(2.5 * 2 ** -24), 0x0002, 'a subnormal tie rounds to even (down)')
  t.equal(numberToHalf(0.5 * 2 ** -24), 0x0000, 'half the smallest subnormal rounds to +0')
  t.equal(numberToHalf(65519.99), 0x7bff, 'just below 65520 is the largest half')
  t.equal(numberToHalf(65520), 0x7c00, '65520 (the tie above 65504) is Infinity')
})

// ---- an independent reference ------------------------------------------------
// Every finite half as a double, straight from the bit layout (exact: 11 significant
// bits), sorted. The correctly rounded half of a double x is then found with exact double
// comparisons only: the two neighbours of x and their midpoint (also exact, 12 bits); no
// rounding arithmetic, so nothing here can share a rounding bug with the code under test.

/** Positive finite halves ascending, then 2^16 standing for Infinity (0x7c00, whose mantissa is even). */
const values: number[] = []
const bits: number[] = []
for (let h = 0; h < 0x7c00; h++) {
  const exp = h >> 10
  const frac = h & 0x3ff
  values.push(exp === 0 ? frac * 2 ** -24 : (1024 + frac) * 2 ** (exp - 25))
  bits.push(h)
}
values.push(2 ** 16)
bits.push(0x7c00)

function reference (x: number): number {
  if (Number.isNaN(x)) return 0x7e00
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0
  const a = Math.abs(x)
  if (a >= 2 ** 16) return sign | 0x7c00
  // the last i with values[i] <= a
  let lo = 0
  let hi = values.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if ((values[mid] as number) <= a) lo = mid
    else hi = mid - 1
  }
  const below = values[lo] as number
  if (below === a) return sign | (bits[lo] as number)
  const above = values[lo + 1] as number
  const mid = (below + above) / 2
  const pick = a < mid ? lo : a > mid ? lo + 1 : ((bits[lo] as number) & 1) === 0 ? lo : lo + 1
  return sign | (bits[pick] as number)
}

const f64 = new Float64Array(1)
const u64 = new BigUint64Array(f64.buffer)
/** The doubles just below and just above x (x finite, non-zero). */
function neighbours (x: number): [number, number] {
  f64[0] = x
  const b = u64[0] as bigint
  u64[0] = b - 1n
  const down = f64[0] as number
  u64[0] = b + 1n
  const up = f64[0] as number
  return x > 0 ? [down, up] : [up, down]
}

/** Checks every value; one failure message per kind of value, with the count. */
function agree (t: Test, xs: Iterable<number>, what: string): void {
  let n = 0
  let wrong = 0
  let first = ''
  for (const x of xs) {
    n++
    const got = numberToHalf(x)
    const want = reference(x)
    if (got !== want) {
      if (wrong++ === 0) first = `${x}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`
    }
  }
  t.equal(wrong, 0, `${what}: ${wrong} of ${n} wrong${wrong > 0 ? ` (first ${first})` : ''}`)
}

t.test('the reference itself: exact halves map to their bits', async t => {
  t.equal(reference(1), 0x3c00)
  t.equal(reference(1 + 2 ** -11), 0x3c00)
  t.equal(reference(1 + 2 ** -11 + 2 ** -40), 0x3c01)
  t.equal(reference(-65520), 0xfc00)
  t.equal(reference(65519), 0x7bff)
  t.equal(reference(2 ** -26), 0)
})

t.test('all 65,536 halves: bits -> number -> the same bits', async t => {
  let wrong = 0
  let nans = 0
  for (let h = 0; h < 0x10000; h++) {
    const x = halfToNumber(h)
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) {
      if (Number.isNaN(x) && Number.isNaN(halfToNumber(numberToHalf(x)))) nans++
      continue
    }
    const want = (h & 0x8000 ? -1 : 1) * ((h & 0x7fff) === 0x7c00 ? Infinity : values[h & 0x7fff] as number)
    if (x !== want || Object.is(x, -0) !== (h === 0x8000) || numberToHalf(x) !== h) wrong++
  }
  t.equal(wrong, 0, 'every non-NaN half decodes to its value and encodes back to its bits')
  t.equal(nans, 2 * 1023, 'every NaN pattern decodes to NaN and stays NaN')
})

t.test('midpoints between adjacent halves: ties to even, and the doubles either side of each tie', async t => {
  const ties: number[] = []
  const near: number[] = []
  for (let i = 0; i + 1 < values.length; i++) {
    const mid = ((values[i] as number) + (values[i + 1] as number)) / 2
    for (const x of [mid, -mid]) {
      ties.push(x)
      near.push(...neighbours(x))
    }
  }
  agree(t, ties, 'ties')
  agree(t, near, 'one double ulp off a tie')
})

t.test('random doubles across and around the half range', async t => {
  // xorshift32, fixed seed
  let s = 0x2545f491
  const next = (): number => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s }
  const xs: number[] = []
  for (let i = 0; i < 200_000; i++) {
    // a random 52-bit mantissa and sign, an exponent from 2^-30 to 2^17
    const hi = next() & 0xfffff
    const lo = next()
    const exp = -30 + (next() % 48)
    const mant = 1 + hi / 2 ** 20 + lo / 2 ** 52
    xs.push((next() & 1 ? -1 : 1) * mant * 2 ** exp)
  }
  agree(t, xs, 'random doubles')
  agree(t, [Number.MIN_VALUE, -Number.MIN_VALUE, Number.MAX_VALUE, -Number.MAX_VALUE, 2 ** -1022, 1e-300, 1e300], 'extremes')
})
