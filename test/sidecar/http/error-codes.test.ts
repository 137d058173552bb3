/**
 * REST error bodies carry the stable code next to the protocol's message, so a client can
 * tell a full queue (retry at once) from a model that is not ready (wait) although both are
 * 503; the metrics port's error answers carry codes too.
 */
import t from 'tap'
import { request } from 'undici'
import { startSidecar, FIXTURE_REPO } from '../../fixtures/sidecar.js'
import { fixtureModel, repositorySidecar } from '../../fixtures/repository.js'

const slowBody = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 256], data: new Array(256).fill(0.2) }] }

t.test('a 503 for a full queue and a 503 for a model that is not ready carry different codes', async t => {
  const s = await repositorySidecar(t, {
    slow: { copy: fixtureModel('slow'), config: 'max_batch_size: 0\ndynamic_batching: { max_queue_size: 2 }\nwarmup: false\n' },
    broken: fixtureModel('broken')
  })

  const results = await Promise.all(Array.from({ length: 8 }, async () => await s.post('/v2/models/slow/infer', slowBody)))
  const overloaded = results.filter(r => r.status === 503)
  t.ok(overloaded.length >= 2, `some requests were turned away (${overloaded.length})`)
  for (const r of overloaded) {
    t.same(Object.keys(r.body).sort(), ['code', 'error'])
    t.equal(r.body.code, 'OS_ERR_OVERLOADED')
    t.match(r.body.error, "model 'slow' queue is full (2 requests)", 'the message is unchanged')
    t.equal(r.headers['retry-after'], '1')
  }

  const notReady = await s.post('/v2/models/broken/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] })
  t.equal(notReady.status, 503)
  t.equal(notReady.body.code, 'OS_ERR_MODEL_NOT_READY')
  t.match(notReady.body.error, /model 'broken' version latest is not ready/)
  t.not(notReady.body.code, overloaded[0]?.body.code)
})

t.test('every kind of REST error answer has its code; the metrics port too', async t => {
  const s = await startSidecar({ repository: FIXTURE_REPO, models: [{ name: 'add' }] })
  t.teardown(s.close)
  const cases: Array<[string, Promise<{ status: number, body: any }>, number, string]> = [
    ['no route', s.get('/nope'), 404, 'OS_ERR_NOT_FOUND'],
    ['unknown model', s.get('/v2/models/ghost'), 404, 'OS_ERR_MODEL_NOT_FOUND'],
    ['bad JSON', s.post('/v2/models/add/infer', '{'), 400, 'OS_ERR_BAD_JSON'],
    ['bad version', s.get('/v2/models/add/versions/x'), 400, 'OS_ERR_BAD_VERSION']
  ]
  for (const [what, answer, status, code] of cases) {
    const a = await answer
    t.equal(a.status, status, what)
    t.equal(a.body.code, code, what)
    t.type(a.body.error, 'string', what)
  }
  const put = await s.client.request({ method: 'PUT', path: '/v2' })
  t.equal(put.statusCode, 405)
  t.equal((await put.body.json() as { code: string }).code, 'OS_ERR_METHOD_NOT_ALLOWED')

  const missing = await request(`${s.metricsUrl}/nope`)
  t.equal(missing.statusCode, 404)
  t.same(await missing.body.json(), { error: 'no route for GET /nope', code: 'OS_ERR_NOT_FOUND' })
  const post = await request(`${s.metricsUrl}/metrics`, { method: 'POST' })
  t.equal(post.statusCode, 405)
  t.equal(post.headers.allow, 'GET')
  t.same(await post.body.json(), { error: 'POST is not allowed on /metrics', code: 'OS_ERR_METHOD_NOT_ALLOWED' })
})
