// The shop's recommendations service: ranks the catalog's products for a user by the
// probability that they buy each one, as the `recommendations` model in the sidecar next
// to it says. No ML code here: features are looked up and concatenated, the model runs
// in the sidecar, reached through `onnx-sidecar/client` (ONNX_SIDECAR_URL, or the Unix
// socket ONNX_SIDECAR_SOCKET when the injector set one up).
//
//   GET  /recommendations?user=u-ada[&exclude=p01][&limit=4]
//        {"model","model_version","sidecar_ms","user","items":[{"id","name",...,"score"}]}
//   POST /score  {"rows": [[8 raw features], ...]}   the model's answer for raw rows
//        {"model","model_version","sidecar_ms","label":[...],"probabilities":[[...]]}
//   GET  /healthz   200 {"ready":true,...} once the sidecar has the model ready, else 503
import { createServer } from 'node:http'
import { performance } from 'node:perf_hooks'
import { SidecarRequestError } from 'onnx-sidecar/client'

/** Input columns of the model, in order (see examples/shop/README.md). */
export const FEATURES = ['user_age', 'user_avg_order_eur', 'user_sessions_30d', 'category_affinity',
  'price_eur', 'rating', 'reviews', 'price_to_avg_order']

/** The model's input row for showing `product` to `user` (train.py computes the same). */
export function featureRow (user, product) {
  return [user.age, user.avg_order_eur, user.sessions_30d, user.affinity[product.category] ?? 0,
    product.price_eur, product.rating, product.reviews, product.price_eur / user.avg_order_eur]
}

const MAX_BATCH = 64

class HttpError extends Error {
  constructor (status, message) { super(message); this.status = status }
}

function send (res, status, body) {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readJson (req) {
  const chunks = []
  let size = 0
  for await (const c of req) {
    size += c.length
    if (size > 1 << 20) throw new HttpError(413, 'body over 1 MiB')
    chunks.push(c)
  }
  try { return JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch { throw new HttpError(400, 'body is not JSON') }
}

function isRow (row) {
  return Array.isArray(row) && row.length === FEATURES.length && row.every(v => typeof v === 'number' && Number.isFinite(v))
}

/**
 * The HTTP handler. `sidecar` is an onnx-sidecar/client SidecarClient, `catalog` the
 * parsed examples/shop/catalog.json.
 */
export function createApp ({ sidecar, catalog, model = 'recommendations' }) {
  const users = new Map(catalog.users.map(u => [u.id, u]))
  const transport = sidecar.socketPath !== undefined ? `unix:${sidecar.socketPath}` : sidecar.url

  // The model's max_batch_size (config.yaml) is 64: larger requests go in chunks, at once.
  async function score (rows) {
    const started = performance.now()
    const chunks = []
    for (let i = 0; i < rows.length; i += MAX_BATCH) chunks.push(rows.slice(i, i + MAX_BATCH))
    let answers
    try {
      answers = await Promise.all(chunks.map(chunk => sidecar.infer(model, [
        { name: 'input', datatype: 'FP32', shape: [chunk.length, FEATURES.length], data: chunk.flat() }
      ])))
    } catch (err) {
      if (err instanceof SidecarRequestError) throw err
      throw new HttpError(503, `sidecar unreachable: ${err.message}`)
    }
    const sidecarMs = Math.round((performance.now() - started) * 1000) / 1000
    const label = []
    const probabilities = []
    for (const [i, res] of answers.entries()) {
      label.push(...res.outputs.find(o => o.name === 'label').data)
      const flat = res.outputs.find(o => o.name === 'probabilities').data
      const width = flat.length / chunks[i].length
      for (let r = 0; r < chunks[i].length; r++) probabilities.push(flat.slice(r * width, (r + 1) * width))
    }
    return { model, model_version: answers[0].model_version, sidecar_ms: sidecarMs, label, probabilities }
  }

  async function route (req, res) {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === '/healthz' && req.method === 'GET') {
      const ready = await sidecar.modelReady(model).catch(() => false)
      return send(res, ready ? 200 : 503, { ready, model, sidecar: transport })
    }
    if (url.pathname === '/recommendations' && req.method === 'GET') {
      const user = users.get(url.searchParams.get('user') ?? '')
      if (user === undefined) throw new HttpError(404, `unknown user '${url.searchParams.get('user') ?? ''}'`)
      const exclude = new Set((url.searchParams.get('exclude') ?? '').split(',').filter(Boolean))
      const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? 4) || 4, 1), 50)
      const products = catalog.products.filter(p => !exclude.has(p.id))
      const answer = await score(products.map(p => featureRow(user, p)))
      const items = products
        .map((p, i) => ({ id: p.id, name: p.name, category: p.category, price_eur: p.price_eur, score: answer.probabilities[i][1] }))
        .sort((a, b) => b.score - a.score) // stable: ties keep catalog order
        .slice(0, limit)
      return send(res, 200, { model, model_version: answer.model_version, sidecar_ms: answer.sidecar_ms, user: user.id, items })
    }
    if (url.pathname === '/score' && req.method === 'POST') {
      const body = await readJson(req)
      const rows = body?.rows
      if (!Array.isArray(rows) || rows.length === 0 || rows.length > 10_000 || !rows.every(isRow)) {
        throw new HttpError(400, `rows: 1 to 10000 arrays of ${FEATURES.length} numbers (${FEATURES.join(', ')})`)
      }
      return send(res, 200, await score(rows))
    }
    throw new HttpError(404, 'not found: GET /recommendations?user=ID, POST /score, GET /healthz')
  }

  const server = createServer((req, res) => {
    route(req, res).catch(err => {
      if (err instanceof HttpError) return send(res, err.status, { error: err.message })
      // The sidecar's own status passes through as 502 (its 400s are our bug) or 503.
      const status = err instanceof SidecarRequestError ? (err.status === 503 ? 503 : 502) : 500
      send(res, status, { error: `sidecar: ${err.message}` })
    })
  })
  return { server, transport }
}
