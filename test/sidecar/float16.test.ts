import t from 'tap'
import { halfToNumber, numberToHalf } from '../../sidecar/float16.js'

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
  t.equal(numberToHalf(1e6), 0x7c00, 'overflow becomes Infinity')
  t.equal(numberToHalf(1e-9), 0, 'underflow becomes 0')
  t.equal(halfToNumber(numberToHalf(0.1)), 0.0999755859375, '0.1 rounds to the nearest half')
  t.equal(numberToHalf(1 + 2 ** -11), 0x3c00, 'a tie rounds to even')
  t.equal(numberToHalf(1 + 3 * 2 ** -11), 0x3c02, 'a tie rounds to even (up)')
})
