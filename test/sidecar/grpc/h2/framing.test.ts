/**
 * The wire pieces of the node:http2 gRPC server (sidecar/grpc/h2/framing.ts): message
 * framing and its limits, grpc-timeout, grpc-message percent-encoding, metadata.
 */
import t from 'tap'
import { encodeMessage, frame, headersOf, MessageReader, metadataOf, parseTimeout, Status } from '../../../../sidecar/grpc/h2/framing.js'

t.test('a message split across chunks comes back whole', async t => {
  const framed = frame(Buffer.from('hello world'))
  t.same([...framed.subarray(0, 5)], [0, 0, 0, 0, 11], 'flag 0, big-endian length')
  const r = new MessageReader(100)
  t.equal(r.push(framed.subarray(0, 2)), undefined)
  t.equal(r.push(framed.subarray(2, 7)), undefined)
  t.equal(r.push(framed.subarray(7)), undefined)
  t.equal((r.finish() as Buffer).toString(), 'hello world')
  const one = new MessageReader(100)
  one.push(framed)
  t.equal((one.finish() as Buffer).toString(), 'hello world', 'one chunk')
  const empty = new MessageReader(100)
  empty.push(frame(Buffer.alloc(0)))
  t.equal((empty.finish() as Buffer).length, 0, 'an empty message is a message')
})

t.test('rule breaks are statuses', async t => {
  const compressed = Buffer.from([1, 0, 0, 0, 1, 9])
  t.match(new MessageReader(100).push(compressed), { code: Status.UNIMPLEMENTED, details: /compressed/ })
  t.match(new MessageReader(100).push(Buffer.from([7, 0, 0, 0, 0])), { code: Status.INTERNAL, details: /flag 7/ })
  const big = Buffer.from([0, 0, 0, 0, 101])
  t.same(new MessageReader(100).push(big), { code: Status.RESOURCE_EXHAUSTED, details: 'Received message larger than max (101 vs. 100)' }, 'oversize is refused on the prefix alone')
  t.equal(new MessageReader(101).push(big), undefined, 'at the limit is fine')
  t.match(new MessageReader(100).push(Buffer.concat([frame(Buffer.from('a')), frame(Buffer.from('b'))])), { code: Status.UNIMPLEMENTED, details: /exactly one/ })
  t.match(new MessageReader(100).finish(), { code: Status.UNIMPLEMENTED, details: /none was sent/ })
  const truncated = new MessageReader(100)
  truncated.push(frame(Buffer.from('abcdef')).subarray(0, 8))
  t.match(truncated.finish(), { code: Status.INTERNAL, details: /ended inside a message \(8 of 11 bytes\)/ })
  const prefixOnly = new MessageReader(100)
  prefixOnly.push(Buffer.from([0, 0]))
  t.match(prefixOnly.finish(), { code: Status.INTERNAL, details: /\(2 of \? bytes\)/ })
})

t.test('grpc-timeout', async t => {
  t.equal(parseTimeout(undefined), undefined)
  t.equal(parseTimeout('2H'), 7_200_000)
  t.equal(parseTimeout('3M'), 180_000)
  t.equal(parseTimeout('1S'), 1000)
  t.equal(parseTimeout('250m'), 250)
  t.equal(parseTimeout('1500u'), 1.5)
  t.equal(parseTimeout('99999999n'), 99.999999)
  for (const bad of ['', '5', 'm', '123456789m', '1.5S', '-1S', '10x']) t.ok(Number.isNaN(parseTimeout(bad)), bad)
})

t.test('grpc-message is percent-encoded', async t => {
  t.equal(encodeMessage('plain text: ok'), 'plain text: ok')
  t.equal(encodeMessage('100%'), '100%25')
  t.equal(encodeMessage('a\nb'), 'a%0Ab')
  t.equal(encodeMessage('µs'), '%C2%B5s')
})

t.test('metadata in and out', async t => {
  const md = metadataOf({
    ':path': '/x',
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-timeout': '1S',
    'x-request-id': 'abc',
    'trace-bin': `${Buffer.from([1, 2]).toString('base64')},${Buffer.from([3]).toString('base64')}`,
    'set-cookie': ['a', 'b']
  })
  t.same(md.get('X-Request-Id'), ['abc'], 'keys are looked up lowercased')
  t.same(md.get('trace-bin'), [Buffer.from([1, 2]), Buffer.from([3])], '-bin values are base64, one per comma')
  t.same(md.get('set-cookie'), ['a', 'b'])
  t.same(md.get('te'), [], 'protocol headers are not metadata')
  t.same(md.get(':path'), [])
  t.same(md.get('grpc-timeout'), [])
  t.same(Object.keys(md.getMap()).sort(), ['set-cookie', 'trace-bin', 'x-request-id'])

  const out = { getMap: () => ({ 'retry-after': '1', 'blob-bin': Buffer.from([255]) }) }
  t.same(headersOf(out, { 'grpc-status': '0' }), { 'grpc-status': '0', 'retry-after': '1', 'blob-bin': '/w==' })
  t.same(headersOf({ getMap: () => ({ 'Upper-Key': 2, 'text-bin': 'hi', 'grpc-status': '5', 'content-type': 'x' }) }, {}), { 'upper-key': '2', 'text-bin': 'aGk=' }, 'lowercased; reserved names never overwrite the protocol')
  t.same(headersOf(undefined, { a: '1' }), { a: '1' })
})
