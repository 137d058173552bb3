import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import { readBody, type BodyCost } from '../../common/read-body.js'

const errors = {
  tooLarge: () => new Error('too large'),
  hungUp: (detail: string) => new Error(`hung up (${detail})`)
}

/** A request that sends `chunks`, with `content-length` when `declared` is given. */
function request (chunks: string[], declared?: number): IncomingMessage {
  const req = Readable.from(chunks.map(c => Buffer.from(c)), { objectMode: false }) as unknown as IncomingMessage & { complete: boolean }
  req.headers = declared === undefined ? {} : { 'content-length': String(declared) }
  req.complete = false
  req.on('end', () => { req.complete = true })
  return req
}

/** A cost that records its calls; `whole` is what `start` returns. */
function recorder (whole: boolean): { cost: Required<BodyCost>, calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    cost: {
      start: declared => { calls.push(`start ${String(declared)}`); return whole },
      chunk: (bytes, received) => { calls.push(`chunk ${bytes} ${received}`) },
      end: body => { calls.push(`end ${body.length}`) }
    }
  }
}

t.test('without a cost: the body, whole, declared or not', async t => {
  t.equal((await readBody(request(['ab', 'cd', 'e'], 5), 10, errors)).toString(), 'abcde')
  t.equal((await readBody(request(['ab', 'cd', 'e']), 10, errors)).toString(), 'abcde')
})

t.test('a declared length charged whole at the start: neither chunks nor the end are charged', async t => {
  const { cost, calls } = recorder(true)
  t.equal((await readBody(request(['ab', 'cd'], 4), 10, errors, cost)).toString(), 'abcd')
  t.same(calls, ['start 4'])
})

t.test('charged chunk by chunk (the bytes and those received so far), then the end', async t => {
  const declared = recorder(false)
  t.equal((await readBody(request(['ab', 'cde'], 5), 10, errors, declared.cost)).toString(), 'abcde')
  t.same(declared.calls, ['start 5', 'chunk 2 2', 'chunk 3 5', 'end 5'])
  const chunked = recorder(true) // nothing declared: nothing to charge whole
  chunked.cost.start = declared => { chunked.calls.push(`start ${String(declared)}`); return declared !== undefined }
  t.equal((await readBody(request(['ab', 'cde']), 10, errors, chunked.cost)).toString(), 'abcde')
  t.same(chunked.calls, ['start undefined', 'chunk 2 2', 'chunk 3 5', 'end 5'])
})

t.test('a charge that throws refuses the body with its error', async t => {
  const refused = new Error('refused')
  await t.rejects(readBody(request(['ab'], 2), 10, errors, { start: () => { throw refused }, chunk: () => t.fail('read') }), refused, 'at the start: nothing is read')
  await t.rejects(readBody(request(['ab', 'cd']), 10, errors, { chunk: (_b, received) => { if (received > 2) throw refused } }), refused, 'a chunk')
  await t.rejects(readBody(request(['ab', 'cd']), 10, errors, { end: () => { throw refused } }), refused, 'the end')
})

t.test('over the limit: refused before the start when declared, while streaming otherwise', async t => {
  const declared = recorder(true)
  await t.rejects(readBody(request(['abcdef'], 6), 5, errors, declared.cost), { message: 'too large' })
  t.same(declared.calls, [], 'nothing charged')
  const streamed = recorder(false)
  await t.rejects(readBody(request(['abc', 'def']), 5, errors, streamed.cost), { message: 'too large' })
  t.same(streamed.calls, ['start undefined', 'chunk 3 3'], 'the chunk over the limit is not charged')
})
