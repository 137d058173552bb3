/** The route table's matching: captures, decoding, HEAD for GET, 405 naming the allowed method, 404. */
import t from 'tap'
import { MATCH_MEMO_ENTRIES, MATCH_MEMO_PATH_CHARS, pathOf, Router } from '../../../sidecar/http/router.js'

const router = new Router<string>([
  { method: 'GET', path: '/v2', handle: () => {} },
  { method: 'GET', path: '/v2/models/:model', handle: () => {} },
  { method: 'POST', path: '/v2/models/:model/versions/:version/infer', handle: () => {} }
])

t.test('captures named segments, percent-decoded; empty segments ignored', async t => {
  t.same(router.match('GET', '/v2/models/iris').params, { model: 'iris' })
  t.same(router.match('GET', '//v2//models/my%20model/').params, { model: 'my model' })
  t.same(router.match('GET', '/v2/models/%zz').params, { model: '%zz' }, 'a bad escape is kept as given')
  t.same(router.match('POST', '/v2/models/m/versions/3/infer').params, { model: 'm', version: '3' })
  t.equal(router.match('HEAD', '/v2').route.path, '/v2', 'HEAD wherever GET')
})

t.test('a known path under another method is a 405 naming the allowed one; else 404', async t => {
  t.throws(() => router.match('POST', '/v2'), { code: 'OS_ERR_METHOD_NOT_ALLOWED', statusCode: 405, headers: { allow: 'GET' } })
  t.throws(() => router.match('GET', '/v2/models/m/versions/3/infer'), { code: 'OS_ERR_METHOD_NOT_ALLOWED', headers: { allow: 'POST' } })
  t.throws(() => router.match('GET', '/v2/models'), { code: 'OS_ERR_NOT_FOUND', message: 'no route for GET /v2/models' })
  t.throws(() => router.match('GET', '/v2/models/m/extra'), { code: 'OS_ERR_NOT_FOUND' })
})

t.test('pathOf drops the query string', async t => {
  t.equal(pathOf('/v2/models/m?x=1'), '/v2/models/m')
  t.equal(pathOf('/v2'), '/v2')
})

t.test('matches are remembered, bounded, with frozen params; misses and long paths are not', async t => {
  const r = new Router<string>([
    { method: 'GET', path: '/v2/models/:model', handle: () => {} },
    { method: 'POST', path: '/v2/models/:model/infer', handle: () => {} }
  ])
  const first = r.match('POST', '/v2/models/a/infer')
  t.equal(r.match('POST', '/v2/models/a/infer'), first, 'the same path again: the remembered match')
  t.ok(Object.isFrozen(first.params), 'shared params cannot be changed by one request for the next')
  t.same(r.match('GET', '/v2/models/b').params, { model: 'b' }, 'another path: its own params')
  for (let i = 0; i < 3 * MATCH_MEMO_ENTRIES; i++) t.equal(r.match('GET', `/v2/models/m${i}`).params.model, `m${i}`)
  t.ok(r.remembered <= MATCH_MEMO_ENTRIES, `at most ${MATCH_MEMO_ENTRIES} remembered (${r.remembered})`)
  const before = r.remembered
  for (let i = 0; i < 5; i++) t.throws(() => r.match('GET', `/nope/${i}`), { code: 'OS_ERR_NOT_FOUND' })
  t.throws(() => r.match('GET', '/v2/models/a/infer'), { code: 'OS_ERR_METHOD_NOT_ALLOWED' }, 'a 405 every time')
  t.equal(r.remembered, before, 'misses are not remembered')
  const long = 'x'.repeat(MATCH_MEMO_PATH_CHARS)
  t.equal(r.match('GET', `/v2/models/${long}`).params.model, long)
  t.equal(r.remembered, before, 'a path past the length bound is matched, not remembered')
})
