/**
 * Liveness sees a stuck main thread: the health thread answers probes, but once the main
 * thread has not stamped its heartbeat for `livenessTimeoutMs` both probes answer 503.
 *
 * The sidecar runs in this process, so wedging this test's main thread (Atomics.wait)
 * wedges the sidecar's. The probes are sent from a Worker, whose event loop keeps running.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { request } from 'undici'
import { createSidecar } from '../../sidecar/sidecar.js'
import { FIXTURE_REPO, ROOT, memoryLogger } from '../fixtures/sidecar.js'

interface Probe { status: number, body: any, wedged: boolean }

/**
 * Polls live and ready from another thread. Shared Int32s: [0] the main thread is wedged
 * (set by the test around Atomics.wait), [1] set and notified by the prober when it saw
 * live answer 503 (wakes the test). It stops `after` ms, or once live is 200 after a 503.
 */
const PROBER = `
const { parentPort, workerData } = require('node:worker_threads')
const { origin, shared, after } = workerData
const s = new Int32Array(shared)
const get = async p => { const r = await fetch(origin + p); return { status: r.status, body: await r.json() } }
;(async () => {
  const probes = []
  const end = Date.now() + after
  let sawDown = false
  while (Date.now() < end) {
    const wedgedBefore = Atomics.load(s, 0) === 1
    const live = await get('/v2/health/live')
    const ready = await get('/v2/health/ready')
    const wedged = wedgedBefore && Atomics.load(s, 0) === 1
    probes.push({ ...live, wedged, path: 'live' }, { ...ready, wedged, path: 'ready' })
    if (live.status === 503 && !sawDown) { sawDown = true; Atomics.store(s, 1, 1); Atomics.notify(s, 1) }
    if (sawDown && live.status === 200) break
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  parentPort.postMessage(probes)
})().catch(err => parentPort.postMessage({ error: String(err) }))
`

async function sidecarWithTimeout (t: Test, livenessTimeoutMs: number): Promise<string> {
  const { logger } = memoryLogger()
  const sidecar = createSidecar({ repository: FIXTURE_REPO, models: [{ name: 'add' }], workers: 1, threads: 1, bodyLimit: 1 << 20, pollIntervalMs: 0, watch: false, logger, defaultMetrics: false })
  t.teardown(async () => { await sidecar.close(1000) })
  const port = await sidecar.metricsServer.listen(0, '127.0.0.1', { livenessTimeoutMs })
  await sidecar.start()
  return `http://127.0.0.1:${port}`
}

function startProber (origin: string, shared: SharedArrayBuffer, after: number): { worker: Worker, probes: Promise<Array<Probe & { path: string }>> } {
  const worker = new Worker(PROBER, { eval: true, workerData: { origin, shared, after } })
  const probes = once(worker, 'message').then(([m]) => {
    if (!Array.isArray(m)) throw new Error(`prober failed: ${JSON.stringify(m)}`)
    return m
  })
  return { worker, probes }
}

t.test('a wedged main thread fails liveness and readiness, and recovers when it runs again', async t => {
  const origin = await sidecarWithTimeout(t, 300)
  for (const p of ['/v2/health/live', '/v2/health/ready']) {
    const r = await request(`${origin}${p}`)
    await r.body.dump()
    t.equal(r.statusCode, 200, `${p} before the wedge`)
  }
  const shared = new SharedArrayBuffer(8)
  const s = new Int32Array(shared)
  const { worker, probes } = startProber(origin, shared, 60_000)
  t.teardown(() => worker.terminate())
  await once(worker, 'online')
  // Wedge this thread (the sidecar's main thread) until the prober saw live fail, at most a minute.
  Atomics.store(s, 0, 1)
  const woke = Atomics.wait(s, 1, 0, 60_000)
  Atomics.store(s, 0, 0)
  t.equal(woke, 'ok', 'the prober saw /v2/health/live fail while the main thread was wedged')
  const seen = await probes
  const down = seen.find(p => p.path === 'live' && p.status === 503)
  t.ok(down?.wedged, 'the 503 came while the main thread was wedged')
  t.equal(down?.body.live, false)
  t.match(down?.body.error, /^the main thread has not answered for \d+\.\d s \(liveness timeout 0\.3 s\)$/, 'says how long the main thread has been unresponsive')
  const readyDown = seen[seen.indexOf(down as Probe & { path: string }) + 1]
  t.equal(readyDown?.status, 503, 'readiness fails too')
  t.match(readyDown?.body, { ready: false, error: /the main thread has not answered/ })
  const last = seen.at(-2)
  t.same({ path: last?.path, status: last?.status, wedged: last?.wedged }, { path: 'live', status: 200, wedged: false }, 'live again once the main thread runs')
  t.same(seen.at(-1)?.status, 200, 'ready again too')
})

t.test('--liveness-timeout 0: a wedged main thread stays live', async t => {
  const origin = await sidecarWithTimeout(t, 0)
  const shared = new SharedArrayBuffer(8)
  const s = new Int32Array(shared)
  const { worker, probes } = startProber(origin, shared, 3000)
  t.teardown(() => worker.terminate())
  await once(worker, 'online')
  Atomics.store(s, 0, 1)
  Atomics.wait(s, 1, 0, 2000) // nothing notifies: two seconds wedged
  Atomics.store(s, 0, 0)
  const seen = await probes
  t.ok(seen.some(p => p.wedged), 'probes were answered while the main thread was wedged')
  t.same(seen.filter(p => p.status !== 200), [], 'every probe answered 200')
})

t.test('serve --help documents --liveness-timeout', async t => {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'cli', 'main.js'), 'serve', '--help'])
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.match(out, /--liveness-timeout\n[^\n]*; 0 disables {2}\(default: 10000\) {2}\[env ONNX_SIDECAR_LIVENESS_TIMEOUT_MS\]/)
})
