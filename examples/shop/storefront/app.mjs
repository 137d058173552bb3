// The shop's storefront: one product page that calls the three services and shows their
// answers, each with the model version that produced it and the time its sidecar took,
// so a person can look instead of reading logs. It has no model and no sidecar itself.
//
//   GET /?user=u-ada&product=p01[&q=trail+running+shoes][&hour=19]   the page (HTML)
//   GET /api/page?...same...                                         the same, as JSON
//   GET /healthz                                                     200 {"ready":true}
//
// Every section of the page is an element with a stable id and data attributes, for
// people and for headless browsers alike:
//   <section id="recommendations|search|ad" data-status="ok|error"
//            data-model="..." data-model-version="1" data-sidecar-ms="0.412">
//   items: <li data-product-id="p03" data-score="0.71">, the ad: data-ad-id="a1"
import { createServer } from 'node:http'

const SECTIONS = ['recommendations', 'search', 'ad']

function escape (s) {
  return String(s).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])
}

async function getJson (url, timeoutMs) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  const body = await res.json().catch(() => ({}))
  if (!res.ok) throw new Error(`${res.status} ${body.error ?? res.statusText}`)
  return body
}

/** `services`: { recommendations, search, ads } base URLs. */
export function createApp ({ catalog, services, timeoutMs = 3000 }) {
  const products = new Map(catalog.products.map(p => [p.id, p]))
  const users = new Map(catalog.users.map(u => [u.id, u]))

  async function page (params) {
    const user = users.get(params.get('user') ?? 'u-ada')
    const product = products.get(params.get('product') ?? 'p01')
    if (user === undefined || product === undefined) return undefined
    const q = (params.get('q') ?? product.tags.join(' ')).trim()
    const hour = params.get('hour')
    const calls = {
      recommendations: `${services.recommendations}/recommendations?user=${encodeURIComponent(user.id)}&exclude=${encodeURIComponent(product.id)}&limit=4`,
      search: `${services.search}/search?q=${encodeURIComponent(q)}&limit=5`,
      ad: `${services.ads}/ad?user=${encodeURIComponent(user.id)}&page=${encodeURIComponent(product.id)}${hour !== null ? `&hour=${encodeURIComponent(hour)}` : ''}`
    }
    const answers = await Promise.all(SECTIONS.map(s => getJson(calls[s], timeoutMs).then(
      body => ({ status: 'ok', ...body }),
      err => ({ status: 'error', error: err.message })
    )))
    return { user: { id: user.id, name: user.name }, product, query: q, ...Object.fromEntries(SECTIONS.map((s, i) => [s, answers[i]])) }
  }

  function attrs (answer, extra = {}) {
    const a = {
      'data-status': answer.status,
      'data-model': answer.model ?? '',
      'data-model-version': answer.model_version ?? '',
      'data-sidecar-ms': answer.sidecar_ms ?? '',
      ...extra
    }
    return Object.entries(a).map(([k, v]) => `${k}="${escape(v)}"`).join(' ')
  }

  function meta (answer) {
    if (answer.status !== 'ok') return `<p class="error">unavailable: ${escape(answer.error)}</p>`
    return `<p class="meta">model <b class="model">${escape(answer.model)}</b> <b class="model-version">v${escape(answer.model_version ?? '-')}</b> · sidecar <b class="sidecar-ms">${escape(answer.sidecar_ms)} ms</b></p>`
  }

  function item (p, score) {
    return `<li data-product-id="${escape(p.id)}" data-score="${escape(score)}"><a href="?product=${escape(p.id)}">${escape(p.name)}</a> <span class="price">€${escape(p.price_eur.toFixed(2))}</span> <span class="score">${escape(score.toFixed(3))}</span></li>`
  }

  function html (d) {
    const recs = d.recommendations
    const search = d.search
    const ad = d.ad
    const chosen = ad.status === 'ok' ? ad.ad : undefined
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(d.product.name)} · onnx-sidecar shop</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
section{border:1px solid #ddd;border-radius:8px;padding:.5rem 1rem;margin:1rem 0}
section[data-status=error]{border-color:#c33}.meta{color:#666;font-size:13px}.error{color:#c33}
.score{color:#888;font-size:12px}#ad{background:#fffbe6}
</style></head>
<body data-user-id="${escape(d.user.id)}">
<main id="product" data-product-id="${escape(d.product.id)}">
<h1>${escape(d.product.name)}</h1>
<p>${escape(d.product.category)} · €${escape(d.product.price_eur.toFixed(2))} · ${escape(d.product.rating)}★ (${escape(d.product.reviews)} reviews) · shopping as ${escape(d.user.name)}</p>
</main>
<section id="recommendations" ${attrs(recs)}>
<h2>Recommended for ${escape(d.user.name)}</h2>
${meta(recs)}
<ol>${recs.status === 'ok' ? recs.items.map(i => item(i, i.score)).join('') : ''}</ol>
</section>
<section id="search" ${attrs(search, { 'data-query': d.query })}>
<h2>Search results for “${escape(d.query)}”</h2>
${meta(search)}
<ol>${search.status === 'ok' ? search.results.map(r => item(r, r.score)).join('') : ''}</ol>
</section>
<section id="ad" ${attrs(ad, chosen ? { 'data-ad-id': chosen.id, 'data-p-click': chosen.p_click, 'data-ecpm': chosen.ecpm } : {})}>
<h2>Sponsored</h2>
${meta(ad)}
${chosen ? `<p class="ad"><b>${escape(chosen.title)}</b> <span class="advertiser">${escape(chosen.advertiser)}</span> <span class="score">P(click) ${escape(chosen.p_click.toFixed(3))}</span></p>` : ''}
</section>
</body></html>
`
  }

  function send (res, status, type, text) {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
    res.end(text)
  }

  async function route (req, res) {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (req.method !== 'GET') return send(res, 405, 'application/json', '{"error":"GET only"}')
    if (url.pathname === '/healthz') return send(res, 200, 'application/json', '{"ready":true}')
    if (url.pathname !== '/' && url.pathname !== '/api/page') return send(res, 404, 'application/json', '{"error":"not found"}')
    const d = await page(url.searchParams)
    if (d === undefined) return send(res, 404, 'application/json', '{"error":"unknown user or product"}')
    if (url.pathname === '/api/page') return send(res, 200, 'application/json', JSON.stringify(d))
    return send(res, 200, 'text/html; charset=utf-8', html(d))
  }

  return createServer((req, res) => {
    route(req, res).catch(err => send(res, 500, 'application/json', JSON.stringify({ error: err.message })))
  })
}
