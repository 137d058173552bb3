/** The one estimate of what a JSON body costs once parsed: the shape pass and the pluggable cost. */
import t from 'tap'
import { jsonCost, measureJson, needsShape, type JsonCost } from '../../common/json-cost.js'

const bytes = (text: string): Buffer => Buffer.from(text)
const DEEP = 1_000_000

t.test('depth and counts, skipping strings and escapes', async t => {
  t.same(measureJson(bytes('{"a":[1,2,{"b":null}]}'), DEEP), { depth: 3, containers: 3, separators: 4 })
  t.same(measureJson(bytes('"[[[{{{,:"'), DEEP), { depth: 0, containers: 0, separators: 0 }, 'structure inside a string does not count')
  t.same(measureJson(bytes('["a\\"[[", "\\\\", "]"]'), DEEP), { depth: 1, containers: 1, separators: 2 }, 'escaped quotes and backslashes')
  t.same(measureJson(bytes('{"é€":"[{"}'), DEEP), { depth: 1, containers: 1, separators: 1 }, 'multi-byte characters')
  t.same(measureJson(bytes('[]'.repeat(3) + '[[]]'), DEEP), { depth: 2, containers: 5, separators: 0 })
})

t.test('stops one level past the depth it is given', async t => {
  const shape = measureJson(bytes('['.repeat(100_000) + ']'.repeat(100_000)), 10)
  t.same(shape, { depth: 11, containers: 11, separators: 0 })
  t.equal(measureJson(bytes('['.repeat(10) + ']'.repeat(10)), 10).depth, 10, 'the limit itself is counted whole')
})

t.test('a cost from the length alone, or per item from the shape', async t => {
  const flat: JsonCost = { fixed: 100, perByte: 17, perContainer: 0, perSeparator: 0 }
  t.notOk(needsShape(flat))
  t.equal(jsonCost(flat, 1000), 100 + 17_000, 'no shape needed: known before the body is read')
  const items: JsonCost = { fixed: 0, perByte: 2, perContainer: 64, perSeparator: 32 }
  t.ok(needsShape(items))
  const body = bytes('[{},{},{}]')
  t.equal(jsonCost(items, body.length, measureJson(body, DEEP)), 2 * 10 + 4 * 64 + 2 * 32)
  t.throws(() => jsonCost(items, body.length), /needs the body's shape/, 'a per-item cost without the shape is a bug, not a smaller charge')
})
