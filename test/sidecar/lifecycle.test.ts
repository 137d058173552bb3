import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { request } from 'undici'
import { ROOT, EXAMPLE_REPO, FIXTURE_REPO, startSidecar, untilMetrics } from '../fixtures/sidecar.js'

const CLI = path.join(ROOT, 'dist', 'cli', 'main.js')
const HOLD_IMPORT = path.join(ROOT, 'test', 'fixtures', 'hold-import.mjs')

/** Polls the metrics port's readiness for up to 60 s (model load and warm-up: 'slow' takes 10 s on a busy machine). */
async function untilReady (metricsOrigin: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const r = await request(`${metricsOrigin}/v2/health/ready`)
    await r.body.dump()
    if (r.statusCode === 200) return
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`${metricsOrigin} never became ready`)
}

t.test('serve: SIGTERM lets in-flight requests finish, then exits 0', async t => {
  const child = spawn(process.execPath, [CLI, 'serve', '--model-repository', FIXTURE_REPO, '--model', 'slow,add', '--port', '0', '--grpc-port', '0', '--metrics-port', '0', '--metrics-host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines: Array<Record<string, any>> = []
  const rl = createInterface({ input: child.stdout })
  let url = ''
  let metrics = ''
  const serving = new Promise<void>(resolve => rl.on('line', line => {
    const rec = JSON.parse(line)
    lines.push(rec)
    if (rec.msg === 'onnx-sidecar serving') { url = rec.inference; metrics = rec.metrics.replace(/\/metrics$/, ''); resolve() }
  }))
  await serving
  await untilReady(metrics)
  // Three rows in flight (about 330 ms of compute) when SIGTERM arrives.
  const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 256], data: new Array(3 * 256).fill(0.5) }] })
  const inflight = (async () => {
    const r = await request(`${url}/v2/models/slow/infer`, { method: 'POST', body })
    return { status: r.statusCode, json: await r.body.json() as any }
  })()
  // Wait until the batch has started on a worker (the batch-size histogram counts it at start).
  await untilMetrics(metrics, text => /onnx_sidecar_inference_batch_size_sum\{model="slow",version="1"\} 3/.test(text), 'the batch started')
  child.kill('SIGTERM')
  const result = await inflight
  t.equal(result.status, 200, 'the request in flight at SIGTERM completes')
  t.equal(result.json.outputs[0].shape.join(','), '3,256')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'exit code 0')
  t.ok(lines.some(l => l.msg === 'shutting down: finishing in-flight requests'))
  t.ok(lines.some(l => l.msg === 'stopped'))
})

t.test('serve: SIGTERM while the models load exits 0 without waiting for the load', async t => {
  // Six copies of 'slow' (110 ms per row; warm-up runs 1 + 4 + 4 rows each) load one after
  // the other for several seconds, each native step well under a second.
  const repo = t.testdir(Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`slow${i}`, {
    'config.yaml': 'max_batch_size: 4\n',
    1: { 'model.onnx': readFileSync(path.join(FIXTURE_REPO, 'slow', '1', 'model.onnx')) }
  }])))
  const child = spawn(process.execPath, [CLI, 'serve', '--model-repository', repo, '--port', '0', '--grpc-port', 'off', '--metrics-port', '0', '--metrics-host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines: Array<Record<string, any>> = []
  const rl = createInterface({ input: child.stdout })
  const serving = new Promise<string>(resolve => rl.on('line', line => {
    const rec = JSON.parse(line)
    lines.push(rec)
    if (rec.msg === 'onnx-sidecar serving') resolve(rec.metrics.replace(/\/metrics$/, ''))
  }))
  const exited = once(child, 'exit')
  const metrics = await serving
  const ready = await request(`${metrics}/v2/health/ready`)
  await ready.body.dump()
  t.equal(ready.statusCode, 503, 'still loading when SIGTERM is sent')
  child.kill('SIGTERM')
  const [code, signal] = await exited
  t.same({ code, signal }, { code: 0, signal: null }, 'exit code 0, not killed by the signal')
  t.ok(lines.some(l => l.msg === 'shutting down while the models load' && l.signal === 'SIGTERM'), 'logs the signal')
  t.ok(lines.some(l => l.msg === 'stopped'), 'logs that it stopped')
  t.ok(lines.filter(l => l.msg === 'model version ready').length < 6, 'did not wait for every model to load')
  t.notOk(lines.some(l => l.level >= 50), 'no error logged for the abandoned load')
})

t.test('serve: SIGTERM before the command\'s modules have loaded exits 0, not 143', async t => {
  // The loading of serve-command.js is held (test/fixtures/hold-import.mjs): the signal
  // arrives at a known point of start-up, before serve could install any handler itself.
  const child = spawn(process.execPath, ['--import', HOLD_IMPORT, CLI, 'serve', '--model-repository', EXAMPLE_REPO, '--port', '0', '--grpc-port', 'off', '--metrics-port', '0', '--metrics-host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOLD_IMPORT: '/sidecar/serve-command.js' }
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = once(child, 'exit')
  const lines: Array<Record<string, any>> = []
  createInterface({ input: child.stdout }).on('line', line => lines.push(JSON.parse(line)))
  await new Promise<void>(resolve => createInterface({ input: child.stderr }).on('line', line => { if (line.startsWith('hold-import: holding')) resolve() }))
  child.kill('SIGTERM')
  const [code, signal] = await exited
  t.same({ code, signal }, { code: 0, signal: null }, 'exit code 0, not killed by the signal')
  t.ok(lines.some(l => l.msg === 'signalled before serving: stopped' && l.signal === 'SIGTERM'), 'logs the signal')
  t.notOk(lines.some(l => l.msg === 'onnx-sidecar serving'), 'served nothing')
})

t.test('inject: a signal still ends it as it ends any command-line tool', async t => {
  const child = spawn(process.execPath, ['--import', HOLD_IMPORT, CLI, 'inject', '-f', '-'], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, HOLD_IMPORT: '/injector/inject-command.js' }
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = once(child, 'exit')
  await new Promise<void>(resolve => createInterface({ input: child.stderr }).on('line', line => { if (line.startsWith('hold-import: holding')) resolve() }))
  child.kill('SIGTERM')
  const [code, signal] = await exited
  t.same({ code, signal }, { code: null, signal: 'SIGTERM' })
})

t.test('serve --help lists every flag with its variable and default', async t => {
  const child = spawn(process.execPath, [CLI, 'serve', '--help'])
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  for (const flag of ['--model-repository', '--model', '--host', '--port', '--metrics-port', '--threads', '--log-level', '--body-limit']) t.match(out, flag)
  t.match(out, /\(default: 8500\) {2}\[env ONNX_SIDECAR_PORT\]/)
})

t.test('serve rejects a bad flag value with a message naming it', async t => {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', 'http'])
  let err = ''
  child.stderr.on('data', (c: Buffer) => { err += c.toString() })
  const [code] = await once(child, 'exit')
  t.equal(code, 2)
  t.match(err, /flag --port: 'http' is not an integer/)
})

t.test('health and metrics keep answering while a slow model computes', async t => {
  const s = await startSidecar({ repository: FIXTURE_REPO, models: [{ name: 'slow' }] })
  t.teardown(s.close)
  const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 256], data: new Array(256).fill(0.1) }] }
  let slowDone = 0
  const slow = Array.from({ length: 4 }, async () => { const r = await s.post('/v2/models/slow/infer', body); slowDone++; return r.status })
  await new Promise(resolve => setTimeout(resolve, 20))
  for (let i = 0; i < 5; i++) {
    const ready = await s.get('/v2/health/ready')
    t.equal(ready.status, 200, 'health answers while inference runs on a worker thread')
  }
  t.equal(slowDone, 0, 'the slow requests were still running while health answered')
  t.same(await Promise.all(slow), [200, 200, 200, 200])
})

t.test('the example repository serves both models', async t => {
  const s = await startSidecar({ repository: EXAMPLE_REPO })
  t.teardown(s.close)
  const index = await s.post('/v2/repository/index', {})
  t.same(index.body.map((e: any) => `${e.name}:${e.version}:${e.state}`), ['digits:1:READY', 'iris:1:READY'])
})

t.test('serve exits 1 when its port is taken instead of running deaf', async t => {
  const net = await import('node:net')
  const blocker = net.createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as import('node:net').AddressInfo).port
  for (const flags of [['--port', String(port), '--grpc-port', '0'], ['--port', '0', '--grpc-port', String(port)]]) {
    const child = spawn(process.execPath, [CLI, 'serve', '--model-repository', EXAMPLE_REPO, ...flags, '--metrics-port', '0', '--metrics-host', '127.0.0.1'])
    let out = ''
    child.stdout.on('data', (c: Buffer) => { out += c.toString() })
    const [code] = await once(child, 'exit')
    t.equal(code, 1, `${flags.join(' ')}: exit code 1`)
    t.match(out, /"level":"fatal".*(EADDRINUSE|No address added out of total 1 resolved).*"msg":"cannot listen; exiting"/, `${flags.join(' ')}: says why`)
  }
})

t.test('serve --grpc-port off serves REST only', async t => {
  const child = spawn(process.execPath, [CLI, 'serve', '--model-repository', EXAMPLE_REPO, '--model', 'iris', '--port', '0', '--grpc-port', 'off', '--metrics-port', '0', '--metrics-host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const rl = createInterface({ input: child.stdout })
  const serving = await new Promise<Record<string, unknown>>(resolve => rl.on('line', line => {
    const rec = JSON.parse(line)
    if (rec.msg === 'onnx-sidecar serving') resolve(rec)
  }))
  t.equal(serving.grpc, 'off')
  const metrics = String(serving.metrics).replace(/\/metrics$/, '')
  await untilReady(metrics)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
})
