/**
 * Runs in its own worker thread: the metrics and health listener (default [::]:9464,
 * IPv4 and IPv6; 0.0.0.0 where the host has no IPv6).
 *
 * Kubelet probes must answer even while the main thread is saturated with parsing and
 * encoding, so readiness is read from a shared flag the main thread keeps current, and
 * only `/metrics` asks the main thread (which owns the prom-client registry) over the
 * worker's message port.
 *
 * Answering from another thread must not hide a main thread that is stuck (a busy loop,
 * a deadlock): the main thread stamps a heartbeat (process.hrtime, one clock for every
 * thread) next to the flag, and once it is older than `livenessTimeoutMs` both probes
 * answer 503 and say for how long the main thread has not answered. 0 turns that off.
 *
 * A scrape must never cost inference more than one render now and then, however many
 * arrive (the listener is on every interface: any pod can loop GET /metrics). So at most
 * one render is asked of the main thread at a time: scrapes that arrive while it is in
 * flight wait for the same text; and a rendered text answers every scrape for
 * `scrapeCacheMs` after it (1 second by default; Prometheus scrapes every 15-60 s). A
 * flood costs the main thread at most one render per window (issue 20). A failed render
 * is not kept: the next scrape asks again.
 *
 * workerData: { host, port, flags: SharedArrayBuffer, livenessTimeoutMs, scrapeCacheMs }
 *             flags: Int32 [0] 1 ready, 0 not; BigInt64 at byte 8: heartbeat (ns)
 * to parent:  {type:'listening', port} | {type:'error', message} | {type:'metrics'}
 * from parent: {type:'metrics', ok, text, contentType} | {type:'close'}
 */
import http from 'node:http'
import { parentPort, workerData } from 'node:worker_threads'
import { errorBody } from '../../common/errors.js'
import { listen, send, sendError, sendJson } from '../../common/http.js'
import { errors } from '../core/errors.js'
import { health } from '../inference/metadata.js'

const HEADERS_TIMEOUT_MS = 10_000 // 10 seconds to send request headers
const REQUEST_TIMEOUT_MS = 30_000 // 30 seconds for a whole request
const NS_PER_MS = 1e6

const { host, port, flags, livenessTimeoutMs, scrapeCacheMs } = workerData as { host: string, port: number, flags: SharedArrayBuffer, livenessTimeoutMs: number, scrapeCacheMs: number }
const ready = new Int32Array(flags, 0, 1)
const heartbeat = new BigInt64Array(flags, 8, 1)
const parent = parentPort as NonNullable<typeof parentPort>

/** The main thread's answer to a render: the exposition text (encoded once), or why it failed. */
interface Rendered { ok: boolean, body: Buffer, contentType: string, error: string }
type Reply = (r: Rendered) => void
/** The last good render and when it arrived (process.hrtime, ns). */
let cached: { rendered: Rendered, at: bigint } | undefined
/** Scrapes waiting for the render in flight; undefined when none is. */
let waiting: Reply[] | undefined
const cacheNs = BigInt(Math.round(scrapeCacheMs * NS_PER_MS))

/** Answers with the cached render while it is fresh, else joins (or asks for) the one render in flight. */
function scrape (reply: Reply): void {
  if (cached !== undefined && process.hrtime.bigint() - cached.at < cacheNs) return reply(cached.rendered)
  if (waiting !== undefined) {
    waiting.push(reply)
    return
  }
  waiting = [reply]
  parent.postMessage({ type: 'metrics' })
}

/** Milliseconds since the main thread's last heartbeat, when that exceeds the liveness timeout; else 0. */
function unresponsiveMs (): number {
  if (livenessTimeoutMs <= 0) return 0
  const ms = Number(process.hrtime.bigint() - Atomics.load(heartbeat, 0)) / NS_PER_MS
  return ms > livenessTimeoutMs ? ms : 0
}

const server = http.createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
  const path = (req.url ?? '/').split('?')[0] ?? '/'
  if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, errors.METHOD_NOT_ALLOWED(req.method ?? '', path, 'GET'))
  const which = path.startsWith('/v2/health/') ? path.slice('/v2/health/'.length) : ''
  const stuck = which === 'live' || which === 'ready' ? unresponsiveMs() : 0
  if (stuck > 0) {
    const e = errorBody(errors.UNRESPONSIVE(stuck, livenessTimeoutMs))
    return sendJson(res, 503, which === 'live' ? { live: false, ...e } : { ready: false, ...e })
  }
  const probe = which !== '' ? health(which, () => Atomics.load(ready, 0) === 1) : undefined
  if (probe !== undefined) return sendJson(res, probe.status, probe.body)
  if (path === '/metrics') {
    return scrape(r => {
      if (!r.ok) return sendError(res, errors.METRICS_FAILED(r.error))
      send(res, 200, r.body, { 'content-type': r.contentType })
    })
  }
  sendError(res, errors.NOT_FOUND(req.method ?? 'GET', path))
})

parent.on('message', (msg: { type: 'metrics', ok: boolean, text: string, contentType: string } | { type: 'close' }) => {
  if (msg.type === 'close') {
    server.close(() => process.exit(0))
    server.closeAllConnections()
    return
  }
  const rendered: Rendered = msg.ok
    ? { ok: true, body: Buffer.from(msg.text), contentType: msg.contentType, error: '' }
    : { ok: false, body: Buffer.alloc(0), contentType: '', error: msg.text }
  if (rendered.ok) cached = { rendered, at: process.hrtime.bigint() }
  const replies = waiting ?? []
  waiting = undefined
  for (const reply of replies) reply(rendered)
})

// `::` (the default) on a host without IPv6 falls back to all IPv4 interfaces (common/http.ts).
listen(server, port, host).then(bound => {
  const addr = server.address()
  parent.postMessage({ type: 'listening', port: bound, address: typeof addr === 'object' && addr !== null ? addr.address : host })
  server.on('error', (err: Error) => parent.postMessage({ type: 'error', message: err.message }))
}, (err: Error) => parent.postMessage({ type: 'error', message: err.message }))
