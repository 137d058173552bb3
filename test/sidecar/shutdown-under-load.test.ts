/**
 * Fault test: SIGTERM under load. Concurrent clients keep sending inference requests
 * (fast ones and 110 ms ones) on keep-alive connections while `serve` gets SIGTERM.
 * Every request that gets a response gets 200 or 503 "shutting down" (never a 500); a
 * request can fail at the connection level only if the server never answered it (a new
 * connection refused, or an idle keep-alive connection closed as the request was sent),
 * which the server's per-request debug log tells; and the process exits 0.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { Pool } from 'undici'
import { ROOT, FIXTURE_REPO } from '../fixtures/sidecar.js'

const CLI = path.join(ROOT, 'dist', 'cli', 'main.js')
const CLIENTS = 16
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'])

/** sentAfter/receivedAfter: the request was sent / its answer or error came after SIGTERM was sent. */
interface Outcome { id: string, status?: number, error?: string, code?: string, sentAfter: boolean, receivedAfter: boolean }

t.test('SIGTERM under load: every accepted request is answered 200 or 503, and serve exits 0', async t => {
  const repo = t.testdir({
    slow: { 'config.yaml': 'max_batch_size: 4\n', 1: { 'model.onnx': readFileSync(path.join(FIXTURE_REPO, 'slow', '1', 'model.onnx')) } },
    add: { 'config.yaml': 'max_batch_size: 8\n', 1: { 'model.onnx': readFileSync(path.join(FIXTURE_REPO, 'add', '1', 'model.onnx')) } }
  })
  const child = spawn(process.execPath, [CLI, 'serve', '--model-repository', repo, '--port', '0', '--grpc-port', 'off', '--metrics-port', '0', '--metrics-host', '127.0.0.1', '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = once(child, 'exit')
  const lines: Array<Record<string, any>> = []
  const rl = createInterface({ input: child.stdout })
  const serving = new Promise<Record<string, string>>(resolve => rl.on('line', line => {
    const rec = JSON.parse(line)
    lines.push(rec)
    if (rec.msg === 'onnx-sidecar serving') resolve(rec)
  }))
  const rlClosed = once(rl, 'close')
  const { inference, metrics } = await serving
  const metricsOrigin = (metrics as string).replace(/\/metrics$/, '')
  for (let i = 0; ; i++) {
    const r = await fetch(`${metricsOrigin}/v2/health/ready`)
    await r.arrayBuffer()
    if (r.status === 200) break
    if (i > 600) throw new Error('never ready')
    await new Promise(resolve => setTimeout(resolve, 100))
  }

  const pool = new Pool(inference as string, { connections: CLIENTS })
  t.teardown(() => pool.destroy())
  const bodies = {
    add: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
    slow: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 256], data: new Array(256).fill(0.5) }] })
  }
  const outcomes: Outcome[] = []
  let signalled = false
  let answered = 0
  let startSignal: () => void = () => {}
  const loadRunning = new Promise<void>(resolve => { startSignal = resolve })
  // Each client sends one request after another until the server turns it away.
  const clients = Array.from({ length: CLIENTS }, async (_, c) => {
    const model = c % 4 === 0 ? 'slow' : 'add'
    for (let n = 0; ; n++) {
      const id = `c${c}-${n}`
      const sentAfter = signalled
      try {
        const res = await pool.request({ method: 'POST', path: `/v2/models/${model}/infer`, body: bodies[model], headers: { 'content-type': 'application/json', 'x-request-id': id } })
        const text = await res.body.text()
        outcomes.push({ id, status: res.statusCode, ...(res.statusCode !== 200 ? { error: text } : {}), sentAfter, receivedAfter: signalled })
        if (++answered === 200) startSignal()
        if (res.statusCode !== 200) return
      } catch (err) {
        outcomes.push({ id, error: (err as Error).message, code: (err as { code?: string }).code, sentAfter, receivedAfter: signalled })
        return
      }
    }
  })
  await loadRunning
  signalled = true
  child.kill('SIGTERM')
  await Promise.all(clients)
  const [code, signal] = await exited
  await rlClosed

  t.same({ code, signal }, { code: 0, signal: null }, 'serve exits 0')
  const stopping = lines.find(l => l.msg === 'shutting down: finishing in-flight requests')
  t.ok(stopping !== undefined && stopping.inFlight >= 1, `requests were in flight at SIGTERM (${String(stopping?.inFlight)})`)
  t.ok(lines.some(l => l.msg === 'stopped'), 'logs that it stopped')
  const statuses = outcomes.filter(o => o.status !== undefined)
  t.same(statuses.filter(o => o.status !== 200 && !(o.status === 503 && /shutting down/.test(o.error ?? ''))), [], 'every response is 200 or 503 shutting down')
  t.same(statuses.filter(o => o.status !== 200 && !o.receivedAfter), [], 'nothing but 200 before SIGTERM')
  const drained = statuses.filter(o => o.status === 200 && o.receivedAfter && !o.sentAfter).length
  t.ok(drained >= (stopping?.inFlight ?? 1), `every request in flight at SIGTERM was answered 200 (${drained} answers for ${String(stopping?.inFlight)} in flight)`)
  const failed = outcomes.filter(o => o.status === undefined)
  t.same(failed.filter(o => !CONNECTION_ERRORS.has(o.code ?? '') || !o.receivedAfter), [], 'requests fail only at the connection level, and only once shutdown began')
  const answeredByServer = new Set(lines.filter(l => l.msg === 'inference').map(l => l.reqId as string))
  t.same(failed.filter(o => answeredByServer.has(o.id)), [], 'no request the server answered was lost on the way')
  t.same(lines.filter(l => l.level >= 50), [], 'no error logged')
  t.comment(`${statuses.filter(o => o.status === 200).length} × 200, ${statuses.filter(o => o.status === 503).length} × 503, connection errors: ${failed.map(o => o.code ?? o.error).join(' ') || 'none'}`)
})
