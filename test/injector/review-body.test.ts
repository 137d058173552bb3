/** The pass over a review's bytes that guards nesting depth and estimates what parsing costs. */
import t from 'tap'
import { measureJson, parseCost, MAX_JSON_DEPTH } from '../../injector/review-body.js'
import { admissionReview } from '../fixtures/injector/helpers.js'

const bytes = (text: string): Buffer => Buffer.from(text)

t.test('depth and counts, skipping strings and escapes', async t => {
  t.same(measureJson(bytes('{"a":[1,2,{"b":null}]}')), { depth: 3, containers: 3, separators: 4 })
  t.same(measureJson(bytes('"[[[{{{,:"')), { depth: 0, containers: 0, separators: 0 }, 'structure inside a string does not count')
  t.same(measureJson(bytes('["a\\"[[", "\\\\", "]"]')), { depth: 1, containers: 1, separators: 2 }, 'escaped quotes and backslashes')
  t.same(measureJson(bytes('{"é€":"[{"}')), { depth: 1, containers: 1, separators: 1 }, 'multi-byte characters')
  t.same(measureJson(bytes('[]'.repeat(3) + '[[]]')), { depth: 2, containers: 5, separators: 0 })
})

t.test('stops at the depth limit', async t => {
  const deep = bytes('['.repeat(1_000_000) + ']'.repeat(1_000_000))
  const shape = measureJson(deep)
  t.equal(shape.depth, MAX_JSON_DEPTH + 1, 'counting stops one level past the limit')
  t.equal(shape.containers, MAX_JSON_DEPTH + 1)
  t.equal(measureJson(bytes('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH))).depth, MAX_JSON_DEPTH, 'the limit itself is accepted')
})

t.test('the cost estimate: a real review is cheap, a body of empty objects is dear', async t => {
  const review = bytes(JSON.stringify(admissionReview({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', annotations: { 'onnx-sidecar.io/model': 'iris' } }, spec: { containers: [{ name: 'app', image: 'app:1' }] } })))
  const cost = parseCost(review.length, measureJson(review))
  t.ok(cost > 2 * review.length && cost < 16 * 1024, `a small review is charged ${cost} bytes`)
  const strings = bytes(JSON.stringify({ a: 'x'.repeat(1024 * 1024) }))
  t.equal(parseCost(strings.length, measureJson(strings)), 2 * strings.length + 64 + 64, 'long strings: about twice their size')
  const bomb = bytes('[' + '{},'.repeat(349_525) + '{}]') // ~1 MiB
  t.ok(parseCost(bomb.length, measureJson(bomb)) > 40 * bomb.length, 'empty objects: over 40 times their size (V8 takes ~22)')
})
