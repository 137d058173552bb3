import t from 'tap'
import { classify } from '../../../sidecar/codec/classification.js'

t.test('top-k per row as "score:index:label", highest first', async t => {
  const scores = new Float32Array([0.1, 0.7, 0.2, 0.5, 0.25, 0.25])
  const out = classify(scores, 2, 2, ['a', 'b', 'c'])
  t.same(out.dims, [2, 2])
  t.same(out.data, ['0.700000:1:b', '0.200000:2:c', '0.500000:0:a', '0.250000:1:b'], 'ties keep the lower index first')
})

t.test('without labels the label part is left out; k is capped at the class count', async t => {
  const out = classify(new Float64Array([3, 1, 2]), 1, 10, undefined)
  t.same(out, { data: ['3.000000:0', '2.000000:2', '1.000000:1'], dims: [1, 3] })
})

t.test('integer outputs are classified too', async t => {
  t.same(classify(new BigInt64Array([5n, 9n]), 1, 1, ['x', 'y']).data, ['9.000000:1:y'])
})
