/** What a review is charged once read (REVIEW_COST over its measured shape), and the nesting limit. */
import t from 'tap'
import { MAX_JSON_DEPTH, REVIEW_COST } from '../../injector/review-body.js'
import { jsonCost, measureJson } from '../../common/json-cost.js'
import { admissionReview } from '../fixtures/injector/helpers.js'

const bytes = (text: string): Buffer => Buffer.from(text)
const reviewCost = (body: Buffer): number => jsonCost(REVIEW_COST, body.length, measureJson(body, MAX_JSON_DEPTH))

t.test('the depth limit', async t => {
  const deep = bytes('['.repeat(1_000_000) + ']'.repeat(1_000_000))
  const shape = measureJson(deep, MAX_JSON_DEPTH)
  t.equal(shape.depth, MAX_JSON_DEPTH + 1, 'counting stops one level past the limit')
  t.equal(shape.containers, MAX_JSON_DEPTH + 1)
  t.equal(measureJson(bytes('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH)), MAX_JSON_DEPTH).depth, MAX_JSON_DEPTH, 'the limit itself is accepted')
})

t.test('the cost estimate: a real review is cheap, a body of empty objects is dear', async t => {
  const review = bytes(JSON.stringify(admissionReview({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', annotations: { 'onnx-sidecar.io/model': 'iris' } }, spec: { containers: [{ name: 'app', image: 'app:1' }] } })))
  const cost = reviewCost(review)
  t.ok(cost > 2 * review.length && cost < 16 * 1024, `a small review is charged ${cost} bytes`)
  const strings = bytes(JSON.stringify({ a: 'x'.repeat(1024 * 1024) }))
  t.equal(reviewCost(strings), 2 * strings.length + 64 + 64, 'long strings: about twice their size')
  const bomb = bytes('[' + '{},'.repeat(349_525) + '{}]') // ~1 MiB
  t.ok(reviewCost(bomb) > 40 * bomb.length, 'empty objects: over 40 times their size (V8 takes ~22)')
})
