// The whole shop on one machine: a real sidecar per service, the three services as
// processes (Node, Python, Go), and the storefront; the page must show what the
// expectations say. Run by examples/shop/test.sh, which provides:
//   SHOP_PYTHON  a Python with search/requirements.txt installed (default python3)
//   ADS_BIN      the ads binary (default: built here with go build)
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { SHOP, catalog, expectations, startSidecar } from '../testlib/sidecar.mjs'
import { startService } from '../testlib/service.mjs'
import { createApp } from './app.mjs'

const stops = []
let base, storefront, tmp, services

function attr (html, id, name) {
  const tag = html.match(new RegExp(`<section id="${id}"[^>]*>`))?.[0]
  assert.ok(tag, `section #${id} is on the page`)
  return tag.match(new RegExp(`${name}="([^"]*)"`))?.[1]
}

function ids (html, id) {
  const section = html.match(new RegExp(`<section id="${id}"[\\s\\S]*?</section>`))?.[0] ?? ''
  return [...section.matchAll(/<li data-product-id="([^"]+)"/g)].map(m => m[1])
}

before(async () => {
  storefront = await expectations('storefront')
  tmp = mkdtempSync(path.join(os.tmpdir(), 'shop-'))
  let adsBin = process.env.ADS_BIN
  if (adsBin === undefined) {
    adsBin = path.join(tmp, 'ads')
    execFileSync('go', ['build', '-o', adsBin, '.'], { cwd: path.join(SHOP, 'ads'), stdio: 'inherit' })
  }
  const [recsCar, searchCar, adsCar] = await Promise.all(['recommendations', 'search', 'ads'].map(m => startSidecar({ models: m })))
  stops.push(recsCar.stop, searchCar.stop, adsCar.stop)
  services = {}
  const started = await Promise.all([
    startService('recommendations', process.execPath, [path.join(SHOP, 'recommendations', 'server.mjs')], { env: { ONNX_SIDECAR_URL: recsCar.url } }),
    startService('search', process.env.SHOP_PYTHON ?? 'python3', [path.join(SHOP, 'search', 'server.py')], { env: { ONNX_SIDECAR_GRPC_ADDRESS: searchCar.grpc, HOST: '127.0.0.1' } }),
    startService('ads', adsBin, [], { env: { ONNX_SIDECAR_URL: adsCar.url, CATALOG: path.join(SHOP, 'catalog.json') } })
  ])
  ;[services.recommendations, services.search, services.ads] = started
  stops.push(...started.map(s => s.stop))
  const server = createApp({ catalog: await catalog(), services: { recommendations: services.recommendations.url, search: services.search.url, ads: services.ads.url } })
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  stops.push(() => new Promise(resolve => server.close(resolve)))
  base = `http://127.0.0.1:${server.address().port}`
})

after(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {})
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
})

test('every service answers /healthz 200 with its sidecar ready', async () => {
  for (const [name, s] of Object.entries(services)) {
    const res = await fetch(`${s.url}/healthz`)
    assert.equal(res.status, 200, name)
    assert.equal((await res.json()).ready, true, name)
  }
  assert.equal((await fetch(`${base}/healthz`)).status, 200)
})

test('the product page shows the three sections with the expected answers, model versions and sidecar latencies', async () => {
  for (const demo of storefront.demos) {
    const { user, product, q, hour } = demo.request
    const res = await fetch(`${base}/?user=${user}&product=${product}&q=${encodeURIComponent(q)}&hour=${hour}`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type'), /^text\/html/)
    const html = await res.text()
    assert.match(html, new RegExp(`<main id="product" data-product-id="${product}"`))
    for (const [id, model] of [['recommendations', 'recommendations'], ['search', 'search'], ['ad', 'ads']]) {
      assert.equal(attr(html, id, 'data-status'), 'ok', `${user}: #${id} ok`)
      assert.equal(attr(html, id, 'data-model'), model)
      assert.equal(attr(html, id, 'data-model-version'), '1')
      assert.ok(Number(attr(html, id, 'data-sidecar-ms')) >= 0 && attr(html, id, 'data-sidecar-ms') !== '', `${id}: sidecar ms`)
    }
    assert.deepEqual(ids(html, 'recommendations'), demo.recommendations.map(r => r.id), `${user}: recommendations`)
    assert.deepEqual(ids(html, 'search'), demo.search.map(r => r.id), `${user}: search '${q}'`)
    assert.equal(attr(html, 'search', 'data-query'), q)
    assert.equal(attr(html, 'ad', 'data-ad-id'), demo.ad.id, `${user}: ad`)
    assert.ok(Math.abs(Number(attr(html, 'ad', 'data-p-click')) - demo.ad.p_click) < 1e-4)
  }
})

test('/api/page has the same answers as JSON', async () => {
  const demo = storefront.demos[0]
  const { user, product, q, hour } = demo.request
  const res = await fetch(`${base}/api/page?user=${user}&product=${product}&q=${encodeURIComponent(q)}&hour=${hour}`)
  assert.equal(res.status, 200)
  const body = await res.json()
  assert.deepEqual(body.recommendations.items.map(i => i.id), demo.recommendations.map(r => r.id))
  assert.deepEqual(body.search.results.map(r => r.id), demo.search.map(r => r.id))
  assert.equal(body.ad.ad.id, demo.ad.id)
})

test('the default query is the product\'s tags, which the search expectations cover for p01', async () => {
  const res = await fetch(`${base}/api/page?user=u-ada&product=p01&hour=19`)
  const body = await res.json()
  assert.equal(body.query, 'shoes trail running')
  assert.deepEqual(body.search.results.map(r => r.id), storefront.demos[0].search.map(r => r.id))
})

test('unknown user or product: 404', async () => {
  assert.equal((await fetch(`${base}/?user=nobody`)).status, 404)
  assert.equal((await fetch(`${base}/?product=nope`)).status, 404)
})

test('a service that is down turns its section to data-status="error"; the others still render', async () => {
  await services.ads.stop()
  const html = await (await fetch(`${base}/?user=u-ada&product=p01&hour=19`)).text()
  assert.equal(attr(html, 'ad', 'data-status'), 'error')
  assert.equal(attr(html, 'recommendations', 'data-status'), 'ok')
  assert.equal(attr(html, 'search', 'data-status'), 'ok')
})

test('the page escapes what it shows', async () => {
  const html = await (await fetch(`${base}/?user=u-ada&product=p01&q=${encodeURIComponent('<script>x</script> shoes')}&hour=19`)).text()
  assert.ok(!html.includes('<script>x'), 'no raw <script>')
  assert.ok(html.includes('&lt;script&gt;x'))
})
