import t from 'tap'
import fc from 'fast-check'
import { JsonLimitError, JsonSyntaxError, MAX_DEPTH, MAX_VALUES, OtherValue, parseRequestJson, TensorText } from '../../../sidecar/codec/json-scanner.js'

const SEED = Number(process.env.FUZZ_SEED ?? 20261130)

/** The parser's result with every TensorText read out as a flat array (what JSON.parse + flattening gives). */
function materialize (v: unknown): unknown {
  if (v instanceof TensorText) {
    const leaves = v.leaves()
    const out: unknown[] = []
    for (let i = 0; i < leaves.count; i++) {
      const x = leaves.next()
      out.push(x instanceof OtherValue ? { other: true } : x)
    }
    return out
  }
  if (Array.isArray(v)) return v.map(materialize)
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, materialize(x)]))
  return v
}

/** What JSON.parse gives, with inputs[i].data flattened the same way. */
function reference (text: string): unknown {
  const v = JSON.parse(text) as unknown
  const flat = (a: unknown[]): unknown[] => a.flatMap(x => Array.isArray(x) ? flat(x) : [typeof x === 'object' && x !== null ? { other: true } : x])
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && Array.isArray((v as any).inputs)) {
    for (const input of (v as any).inputs) {
      if (typeof input === 'object' && input !== null && !Array.isArray(input) && Array.isArray(input.data)) input.data = flat(input.data)
    }
  }
  return v
}

const parse = (text: string): unknown => materialize(parseRequestJson(Buffer.from(text)))

t.test('agrees with JSON.parse on any JSON value (differential)', async t => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), v => {
    const text = JSON.stringify(v)
    t.same(parse(text), reference(text))
  }), { seed: SEED, numRuns: 1500 })
  // With whitespace and the request's own structure, so tensor data is recognised.
  const leaf = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.dictionary(fc.string(), fc.integer(), { maxKeys: 2 }))
  const nested = fc.letrec<{ data: unknown }>(tie => ({ data: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('data'), { maxLength: 4 })) })).data
  fc.assert(fc.property(fc.array(fc.record({ name: fc.string(), datatype: fc.constant('FP32'), shape: fc.array(fc.nat(9)), data: fc.array(nested, { maxLength: 6 }) }), { minLength: 1, maxLength: 3 }), fc.option(fc.string()), fc.integer({ min: 0, max: 2 }), (inputs, id, indent) => {
    const text = JSON.stringify({ id, inputs, outputs: [{ name: 'y' }] }, null, indent)
    t.same(parse(text), reference(text))
  }), { seed: SEED, numRuns: 800 })
})

t.test('numbers convert exactly as JSON.parse does', async t => {
  const texts = ['0', '-0', '1', '0.1', '0.30000000000000004', '123456789012345', '1234567890123456789', '9007199254740993', '1e22', '1e23', '1.7976931348623157e308', '1e400', '5e-324', '2.2250738585072014e-308', '-1.5E+3', '3.141592653589793', '0.000001', '100000000000000000000000']
  for (const text of texts) {
    const data = (parseRequestJson(Buffer.from(`{"inputs":[{"data":[${text}]}]}`)) as any).inputs[0].data as TensorText
    t.equal(data.leaves().next(), JSON.parse(text), text)
  }
  fc.assert(fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 1, max: 17 }), (x, digits) => {
    const text = x.toPrecision(digits)
    const data = (parseRequestJson(Buffer.from(`{"inputs":[{"data":[${text}]}]}`)) as any).inputs[0].data as TensorText
    return Object.is(data.leaves().next(), JSON.parse(text))
  }), { seed: SEED, numRuns: 5000 })
})

t.test('rejects what JSON.parse rejects (mutated requests)', async t => {
  const valid = JSON.stringify({ id: 'q', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 2], data: [[1.5, -2], [3e2, "x\u00e9\\n"]] }], outputs: [{ name: 'y', parameters: { classification: 2 } }] })
  fc.assert(fc.property(fc.nat(valid.length - 1), fc.constantFrom('', ',', ']', '[', '{', '}', '"', ':', '\\', '-', '.', 'e', '0', ' ', '\u0001', 'tru', 'nul'), fc.boolean(), (at, insert, replace) => {
    const text = valid.slice(0, at) + insert + valid.slice(replace ? at + 1 : at)
    let expected: unknown
    try { expected = reference(text) } catch { expected = 'error' }
    let actual: unknown
    try {
      actual = parse(text)
    } catch (err) {
      if (!(err instanceof JsonSyntaxError)) throw err
      actual = 'error'
    }
    t.same(actual, expected, text)
  }), { seed: SEED, numRuns: 3000 })
})

t.test('limits: depth and values outside tensor data', async t => {
  const deepData = `{"inputs":[{"name":"x","data":${'['.repeat(10_000)}0${']'.repeat(10_000)}}]}`
  t.throws(() => parseRequestJson(Buffer.from(deepData)), JsonLimitError, '10,000-deep data is a limit error, not a stack overflow')
  t.throws(() => parseRequestJson(Buffer.from('['.repeat(10_000) + ']'.repeat(10_000))), JsonLimitError)
  t.throws(() => parseRequestJson(Buffer.from('{"a":'.repeat(MAX_DEPTH + 1) + '1' + '}'.repeat(MAX_DEPTH + 1))), JsonLimitError, 'objects count towards the depth')
  t.doesNotThrow(() => parseRequestJson(Buffer.from('{"a":'.repeat(MAX_DEPTH) + '1' + '}'.repeat(MAX_DEPTH))), 'up to the limit is fine')
  const empties = `{"inputs":[${new Array(MAX_VALUES + 1).fill('{}').join(',')}]}`
  t.throws(() => parseRequestJson(Buffer.from(empties)), JsonLimitError, '{"inputs":[{},{},...]} stops at the value limit')
  const objectsInData = `{"inputs":[{"data":[${new Array(MAX_VALUES + 1).fill('{}').join(',')}]}]}`
  t.throws(() => parseRequestJson(Buffer.from(objectsInData)), JsonLimitError, 'objects inside data count too')
  const numbers = `{"inputs":[{"data":[${new Array(100_000).fill('0.5').join(',')}]}]}`
  const data = (parseRequestJson(Buffer.from(numbers)) as any).inputs[0].data as TensorText
  t.equal(data.count, 100_000, 'numbers in tensor data do not count towards the value limit')
})

t.test('tensor data: counts, string bytes, other values, __proto__', async t => {
  const v = parseRequestJson(Buffer.from('{"inputs":[{"data":[["ab","c\\"d"],[],[true,{"k":[1,2,3]}]]}], "__proto__": {"polluted": true}}')) as any
  const data = v.inputs[0].data as TensorText
  t.equal(data.count, 4)
  t.equal(data.stringBytes, 6, 'escapes counted as written')
  const l = data.leaves()
  t.equal(l.next(), 'ab')
  t.equal(l.next(), 'c"d')
  t.equal(l.next(), true)
  const other = l.next()
  t.type(other, OtherValue)
  t.equal((other as OtherValue).preview, '{"k":[1,2,3]}')
  t.same(Object.getPrototypeOf(v), Object.prototype, '__proto__ is an own property, as with JSON.parse')
  t.same(v.__proto__, { polluted: true })
  t.equal(({} as any).polluted, undefined)
})

/**
 * How nested data nests, by definition: a value has no dims; an array whose elements are
 * all values (or none) is [length]; one whose elements are all arrays of the same dims d
 * is [length, ...d]; anything else is ragged.
 */
function nestingOf (a: unknown[]): number[] | 'ragged' {
  if (a.every(x => !Array.isArray(x))) return [a.length]
  if (!a.every(x => Array.isArray(x))) return 'ragged'
  const inner = a.map(x => nestingOf(x as unknown[]))
  const first = JSON.stringify(inner[0])
  if (inner[0] === 'ragged' || inner.some(d => JSON.stringify(d) !== first)) return 'ragged'
  return [a.length, ...(inner[0] as number[])]
}

t.test('tensor data: how it nests (dims, or ragged) agrees with the definition', async t => {
  const text = (data: unknown): string => JSON.stringify({ inputs: [{ name: 'x', data }] })
  const nesting = (data: unknown): number[] | 'ragged' => {
    const n = ((parseRequestJson(Buffer.from(text(data))) as any).inputs[0].data as TensorText).nesting
    return 'dims' in n ? n.dims : 'ragged'
  }
  const cases: Array<[unknown[], number[] | 'ragged']> = [
    [[], [0]], [[1, 2, 3, 4], [4]], [[[1, 2, 3, 4]], [1, 4]], [[[1, 2], [3, 4]], [2, 2]], [[[], []], [2, 0]],
    [[[[1], [2]], [[3], [4]]], [2, 2, 1]], [[{}, 'a', null], [3]],
    [[[5.1, 3.5, 1.4], [0.2]], 'ragged'], [[1, [2]], 'ragged'], [[[1], 2], 'ragged'], [[[1], []], 'ragged'],
    [[[[]], [1]], 'ragged'], [[[], [[]]], 'ragged'], [[[[1, 2]], [[3]]], 'ragged']
  ]
  for (const [data, want] of cases) {
    t.same(nestingOf(data), want, `the definition: ${JSON.stringify(data)}`)
    t.same(nesting(data), want, `the parser: ${JSON.stringify(data)}`)
  }
  // Regular arrays (some made ragged by one change) of values, objects and strings.
  const leaf = fc.oneof(fc.integer(), fc.string({ maxLength: 3 }), fc.constant({}), fc.constant(null))
  const regular = fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 4 }).chain(dims => {
    const build = (d: number[]): fc.Arbitrary<unknown[]> => d.length === 1
      ? fc.array(leaf, { minLength: d[0], maxLength: d[0] })
      : fc.array(build(d.slice(1)), { minLength: d[0], maxLength: d[0] })
    return build(dims)
  })
  const spoil = (a: unknown[], path: number[], how: number): void => {
    let at: unknown[] = a
    for (const i of path) {
      const next = at[i % Math.max(at.length, 1)]
      if (!Array.isArray(next)) break
      at = next
    }
    if (how === 0) at.pop()
    else if (how === 1) at.push(Array.isArray(at[0]) ? 1 : [1])
    else at.splice(0, 1, Array.isArray(at[0]) ? 1 : [at[0]])
  }
  let ragged = 0
  fc.assert(fc.property(regular, fc.option(fc.tuple(fc.array(fc.nat(), { maxLength: 4 }), fc.integer({ min: 0, max: 2 })), { nil: undefined }), (data, change) => {
    if (change !== undefined) spoil(data, ...change)
    const want = nestingOf(data)
    if (want === 'ragged') ragged++
    t.same(nesting(data), want, text(data))
  }), { seed: SEED, numRuns: 1500 })
  t.ok(ragged > 200, `ragged ones among them (${ragged})`)
})
