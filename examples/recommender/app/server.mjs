// The "recommender" service of the example shop: an ordinary HTTP service with no ML
// code in it. It asks the onnx-sidecar next to it (ONNX_SIDECAR_URL, set by the injector)
// which iris species a customer's flower is, then recommends products for that species.
//
//   GET  /recommendations?sepal_length=5.1&sepal_width=3.5&petal_length=1.4&petal_width=0.2
//   POST /recommendations   {"flowers": [[5.1, 3.5, 1.4, 0.2], ...]}   (one sidecar call for all)
//   GET  /healthz           200 once the sidecar reports the model ready;
//                           {"ready": true, "sidecar": "<how it reaches the sidecar>"}
//
// Environment: PORT (default 8080), MODEL (default iris), SHUTDOWN_DELAY_SECONDS (default 5:
// how long it keeps serving after SIGTERM, see the end of this file), ONNX_SIDECAR_URL, and
// ONNX_SIDECAR_SOCKET (set by the injector with onnx-sidecar.io/socket: "true"): when that
// file exists, onnx-sidecar/client talks HTTP over the Unix socket instead of TCP. The
// startup log line and /healthz say which: "unix:/var/run/onnx-sidecar/http.sock" or the URL.
import { createServer } from 'node:http'
import { SidecarClient, SidecarRequestError } from 'onnx-sidecar/client'

const port = Number(process.env.PORT ?? 8080)
const shutdownDelayMs = 1000 * Number(process.env.SHUTDOWN_DELAY_SECONDS ?? 5)
let draining = false
const model = process.env.MODEL ?? 'iris'
const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width']

const CATALOG = {
  setosa: ['arctic-iris-bulbs', 'peat-free-compost', 'rock-garden-planter'],
  versicolor: ['blue-flag-rhizomes', 'pond-margin-basket', 'aquatic-soil'],
  virginica: ['southern-blue-flag', 'bog-garden-liner', 'slow-release-feed']
}

const sidecar = new SidecarClient()
const transport = sidecar.socketPath !== undefined ? `unix:${sidecar.socketPath}` : sidecar.url

async function classify (flowers) {
  const res = await sidecar.infer(model, [
    { name: 'input', datatype: 'FP32', shape: [flowers.length, 4], data: flowers.flat() }
  ], { outputs: [{ name: 'probabilities', parameters: { classification: 1 } }] })
  // classification extension: one "score:index:label" string per row
  return res.outputs[0].data.map(entry => {
    const [score, , species] = String(entry).split(':')
    return { species, confidence: Number(score), products: CATALOG[species] ?? [], model_version: res.model_version }
  })
}

function send (res, status, body) {
  const text = JSON.stringify(body)
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }
  // while draining, every answer closes its connection, so keep-alive clients reconnect elsewhere
  if (draining) headers.connection = 'close'
  res.writeHead(status, headers)
  res.end(text)
}

function readJson (req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    req.on('data', c => chunks.push(c))
    req.on('end', () => {
      try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))) } catch (err) { reject(err) }
    })
    req.on('error', reject)
  })
}

function isFlower (row) {
  return Array.isArray(row) && row.length === 4 && row.every(v => typeof v === 'number' && Number.isFinite(v))
}

async function route (req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost')
  if (req.method === 'GET' && url.pathname === '/healthz') {
    const ready = !draining && await sidecar.modelReady(model).catch(() => false)
    return send(res, ready ? 200 : 503, { ready, draining, sidecar: transport })
  }
  if (url.pathname !== '/recommendations') return send(res, 404, { error: 'not found' })
  let flowers
  if (req.method === 'GET') {
    flowers = [FEATURES.map(f => Number(url.searchParams.get(f)))]
  } else if (req.method === 'POST') {
    flowers = (await readJson(req).catch(() => ({}))).flowers
  } else {
    return send(res, 405, { error: 'use GET or POST' })
  }
  if (!Array.isArray(flowers) || flowers.length === 0 || !flowers.every(isFlower)) {
    return send(res, 400, { error: `give ${FEATURES.join(', ')} as numbers` })
  }
  const results = await classify(flowers)
  return send(res, 200, req.method === 'GET' ? results[0] : { results })
}

const server = createServer((req, res) => {
  route(req, res).catch(err => {
    // the sidecar's status (400, 404, 503) passes through; anything else is ours
    const status = err instanceof SidecarRequestError ? err.status : 500
    send(res, status === 400 ? 502 : status, { error: `sidecar: ${err.message}` })
  })
})
server.listen(port, () => {
  console.log(JSON.stringify({ msg: 'recommender listening', port, sidecar: transport, model }))
})
// Graceful stop. Kubernetes sends SIGTERM at the same time as it takes the pod out of the
// Service's endpoints, and kube-proxy and clients learn that a moment later: requests keep
// arriving for a while. So on SIGTERM the app goes on serving for SHUTDOWN_DELAY_SECONDS
// (answers close their connections, /healthz says 503), then stops listening and answers
// the requests it already accepted. Each of them still needs the sidecar, which Kubernetes
// stops only after this container exits. SIGINT (Ctrl-C at a terminal) skips the delay.
function stop (delayMs) {
  if (draining) return
  draining = true
  server.closeIdleConnections()
  setTimeout(() => {
    server.close(() => { sidecar.close().finally(() => process.exit(0)) })
    server.closeIdleConnections()
  }, delayMs)
}
process.once('SIGTERM', () => stop(shutdownDelayMs))
process.once('SIGINT', () => stop(0))
