import t from 'tap'
import { normalize } from '../../../sidecar/codec/normalize.js'

t.test('minmax: x\' = (x - min) / (max - min) per feature, in float32', async t => {
  const data = new Float32Array([4.3, 2.0, 7.9, 4.4, 6.1, 3.2])
  normalize(data, { kind: 'minmax', min: [4.3, 2.0], max: [7.9, 4.4] })
  t.equal(data[0], 0)
  t.equal(data[1], 0)
  t.equal(data[2], 1)
  t.equal(data[3], 1)
  const f = Math.fround
  t.equal(data[4], f(f(f(6.1) - f(4.3)) / f(f(7.9) - f(4.3))), 'each operation rounds to float32, as numpy does')
  t.ok(Math.abs((data[5] as number) - 0.5) < 1e-6)
})

t.test('values outside the training range are not clipped', async t => {
  const data = new Float32Array([10])
  normalize(data, { kind: 'minmax', min: [0], max: [5] })
  t.equal(data[0], 2)
})

t.test('zscore: x\' = (x - mean) / std; FP64 inputs stay in double precision', async t => {
  const data = new Float64Array([1, 10, 3, 20])
  normalize(data, { kind: 'zscore', mean: [2, 10], std: [0.5, 5] })
  t.same(Array.from(data), [-2, 0, 2, 2])
  const precise = new Float64Array([0.1])
  normalize(precise, { kind: 'zscore', mean: [0], std: [3] })
  t.equal(precise[0], 0.1 / 3, 'no float32 rounding for FP64')
})
