/**
 * Runs in its own worker thread: the metrics and health listener (default 0.0.0.0:9464).
 *
 * Kubelet probes must answer even while the main thread is saturated with parsing and
 * encoding, so readiness is read from a shared flag the main thread keeps current, and
 * only `/metrics` asks the main thread (which owns the prom-client registry) over the
 * worker's message port.
 *
 * workerData: { host, port, flags: SharedArrayBuffer }  flags[0]: 1 ready, 0 not
 * to parent:  {type:'listening', port} | {type:'error', message} | {type:'metrics', id}
 * from parent: {type:'metrics', id, ok, text, contentType} | {type:'close'}
 */
import http from 'node:http'
import { parentPort, workerData } from 'node:worker_threads'
import { health } from './metadata.js'

const { host, port, flags } = workerData as { host: string, port: number, flags: SharedArrayBuffer }
const ready = new Int32Array(flags)
const parent = parentPort as NonNullable<typeof parentPort>
const pending = new Map<number, (m: { ok: boolean, text: string, contentType: string }) => void>()
let nextId = 1

function json (res: http.ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

const server = http.createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
  const path = (req.url ?? '/').split('?')[0] ?? '/'
  if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: `${req.method ?? ''} is not allowed on ${path}` })
  const probe = path.startsWith('/v2/health/') ? health(path.slice('/v2/health/'.length), () => Atomics.load(ready, 0) === 1) : undefined
  if (probe !== undefined) return json(res, probe.status, probe.body)
  if (path === '/metrics') {
    const id = nextId++
    pending.set(id, m => {
      if (!m.ok) return json(res, 500, { error: `collecting metrics failed: ${m.text}` })
      res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(m.text) })
      res.end(m.text)
    })
    parent.postMessage({ type: 'metrics', id })
    return
  }
  json(res, 404, { error: `no route for ${req.method ?? 'GET'} ${path}` })
})

parent.on('message', (msg: { type: 'metrics', id: number, ok: boolean, text: string, contentType: string } | { type: 'close' }) => {
  if (msg.type === 'close') {
    server.close(() => process.exit(0))
    server.closeAllConnections()
    return
  }
  const reply = pending.get(msg.id)
  pending.delete(msg.id)
  reply?.(msg)
})

server.on('error', (err) => parent.postMessage({ type: 'error', message: err.message }))
server.listen(port, host, () => {
  const addr = server.address()
  parent.postMessage({ type: 'listening', port: typeof addr === 'object' && addr !== null ? addr.port : port })
})
