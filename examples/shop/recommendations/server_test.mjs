// The recommendations service against a real sidecar serving examples/shop/models:
//   node --test examples/shop/recommendations/server_test.mjs   (npm run build first)
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { SidecarClient } from 'onnx-sidecar/client'
import { catalog, expectations, startSidecar } from '../testlib/sidecar.mjs'
import { createApp, featureRow } from './app.mjs'

let sidecar, client, server, base, heldout, storefront, shop

before(async () => {
  ;[heldout, storefront, shop] = await Promise.all([expectations('recommendations'), expectations('storefront'), catalog()])
  sidecar = await startSidecar({ models: 'recommendations' })
  client = new SidecarClient({ url: sidecar.url })
  server = createApp({ sidecar: client, catalog: shop }).server
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${server.address().port}`
})

after(async () => {
  server?.close()
  await client?.close()
  await sidecar?.stop()
})

test('/healthz is 200 once the sidecar has the model', async () => {
  const res = await fetch(`${base}/healthz`)
  assert.equal(res.status, 200)
  const body = await res.json()
  assert.equal(body.ready, true)
  assert.equal(body.sidecar, sidecar.url)
})

test('POST /score answers every held-out row as the model does (labels exact, probabilities within 1e-5)', async () => {
  const res = await fetch(`${base}/score`, { method: 'POST', body: JSON.stringify({ rows: heldout.raw_features }) })
  assert.equal(res.status, 200)
  const body = await res.json()
  assert.equal(body.model, 'recommendations')
  assert.equal(body.model_version, '1')
  assert.equal(typeof body.sidecar_ms, 'number')
  assert.deepEqual(body.label, heldout.expected_label)
  assert.equal(body.probabilities.length, heldout.expected_probabilities.length)
  let worst = 0
  body.probabilities.forEach((row, i) => row.forEach((p, k) => { worst = Math.max(worst, Math.abs(p - heldout.expected_probabilities[i][k])) }))
  assert.ok(worst < 1e-5, `largest probability difference ${worst}`)
  const correct = body.label.filter((l, i) => l === heldout.target[i]).length
  assert.equal(Math.round(correct / heldout.target.length * 1e6) / 1e6, heldout.accuracy)
})

test('the service builds the rows train.py builds', () => {
  const ada = shop.users.find(u => u.id === 'u-ada')
  const p01 = shop.products.find(p => p.id === 'p01')
  assert.deepEqual(featureRow(ada, p01), [34, 85, 18, 0.55, 129, 4.6, 1840, 129 / 85])
})

test('GET /recommendations ranks the catalog as the expectations say, for every demo user', async () => {
  for (const demo of storefront.demos) {
    const { user, product } = demo.request
    const res = await fetch(`${base}/recommendations?user=${user}&exclude=${product}&limit=${storefront.recommendations_limit}`)
    assert.equal(res.status, 200)
    const body = await res.json()
    assert.equal(body.model_version, '1')
    assert.deepEqual(body.items.map(i => i.id), demo.recommendations.map(r => r.id), `recommendations for ${user}`)
    body.items.forEach((item, k) => assert.ok(Math.abs(item.score - demo.recommendations[k].score) < 1e-4, `${item.id}: ${item.score}`))
    assert.ok(!body.items.some(i => i.id === product), 'the page\'s own product is excluded')
  }
})

test('bad requests: unknown user 404, bad rows 400, unknown path 404', async () => {
  assert.equal((await fetch(`${base}/recommendations?user=nobody`)).status, 404)
  assert.equal((await fetch(`${base}/score`, { method: 'POST', body: '{"rows":[[1,2,3]]}' })).status, 400)
  assert.equal((await fetch(`${base}/score`, { method: 'POST', body: 'nope' })).status, 400)
  assert.equal((await fetch(`${base}/nope`)).status, 404)
})

test('without its sidecar the service says so: /healthz 503, requests 503', async () => {
  await sidecar.stop()
  const health = await fetch(`${base}/healthz`)
  assert.equal(health.status, 503)
  assert.equal((await health.json()).ready, false)
  const res = await fetch(`${base}/recommendations?user=u-ada`)
  assert.equal(res.status, 503)
  assert.match((await res.json()).error, /sidecar/)
})
