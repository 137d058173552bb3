/** `onnx-sidecar webhook` as the chart runs it: a child process with real certificate files. */
import t, { type Test } from 'tap'
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { connect } from 'node:tls'
import { createServer } from 'node:net'
import type { Readable } from 'node:stream'
import { Agent, request } from 'undici'
import { WEBHOOK_OPTIONS } from '../../injector/webhook-command.js'
import { WEBHOOK_DEFAULTS } from '../../injector/webhook-defaults.js'
import { makeCa, makeServing } from '../fixtures/injector/certs.js'
import { admissionReview } from '../fixtures/injector/helpers.js'
import { readConfig } from '../../common/config.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', annotations: { 'onnx-sidecar.io/model': 'iris' } }, spec: { containers: [{ name: 'app' }] } }

interface Running {
  child: ChildProcessByStdio<null, Readable, Readable>
  lines: Array<Record<string, any>>
  stderr: () => string
  exited: Promise<number | null>
  listening: Promise<Record<string, any>>
}

const LOCAL_ANY_PORT = ['--port', '0', '--metrics-port', '0', '--host', '127.0.0.1']

function start (t: Test, args: string[], env: Record<string, string> = {}, listenArgs = LOCAL_ANY_PORT): Running {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'webhook', ...listenArgs, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => { resolve(code) }))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const lines: Array<Record<string, any>> = []
  const listening = new Promise<Record<string, any>>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', line => {
      const entry = JSON.parse(line) as Record<string, any>
      lines.push(entry)
      if (entry.msg === 'injector listening') resolve(entry)
    })
    child.on('exit', () => { reject(new Error(`exited before listening: ${stderr}`)) })
  })
  listening.catch(() => {})
  return { child, lines, stderr: () => stderr, exited, listening }
}

async function until (what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function certificates (dir: string, serial: string, ca?: Awaited<ReturnType<typeof makeCa>>): Promise<Awaited<ReturnType<typeof makeCa>>> {
  const authority = ca ?? await makeCa()
  const serving = await makeServing(authority, serial)
  writeFileSync(`${dir}/tls.crt`, serving.cert)
  writeFileSync(`${dir}/tls.key`, serving.key)
  return authority
}

/** The serial number of the certificate a fresh TLS connection sees. */
function servedSerial (port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber.toLowerCase()
      socket.end()
      resolve(serial)
    })
    socket.on('error', reject)
  })
}

async function post (port: number, agent: Agent, uid: string): Promise<any> {
  const res = await request(`https://127.0.0.1:${port}/mutate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(admissionReview(pod, { uid })), dispatcher: agent })
  return await res.body.json()
}

async function metrics (metricsPort: number): Promise<string> {
  const res = await request(`http://127.0.0.1:${metricsPort}/metrics`)
  return await res.body.text()
}

t.test('starts, answers over HTTPS, serves metrics and stops on SIGTERM', async t => {
  const dir = t.testdir({ 'config.yaml': 'image: example/sidecar:9\n' })
  const ca = await certificates(dir, '11')
  const run = start(t, ['--tls-cert', `${dir}/tls.crt`, '--tls-key', `${dir}/tls.key`, '--processes', '1'], { ONNX_SIDECAR_CONFIG: `${dir}/config.yaml` })
  const { port, metricsPort, image } = await run.listening
  t.equal(image, 'example/sidecar:9', 'config from ONNX_SIDECAR_CONFIG')

  const agent = new Agent({ connect: { ca: ca.pem, servername: 'localhost' } })
  const json = await post(port, agent, 'cli-1')
  t.match(json.response, { uid: 'cli-1', allowed: true, patchType: 'JSONPatch' })
  await agent.close()
  t.match(await metrics(metricsPort), /onnx_sidecar_injector_admissions_total\{result="injected"\} 1/)

  run.child.kill('SIGTERM')
  t.equal(await run.exited, 0, 'exit code 0 after SIGTERM')
  t.ok(run.lines.some(l => l.msg === 'admission' && l.uid === 'cli-1'))
  t.ok(run.lines.some(l => l.msg === 'shutting down' && l.signal === 'SIGTERM'))
})

t.test('SIGTERM before the command\'s modules have loaded: it stops with exit code 0, not 143', async t => {
  const dir = t.testdir({ 'config.yaml': 'image: example/sidecar:9\n' })
  await certificates(dir, '12')
  // The loading of webhook-command.ts is held (test/fixtures/hold-import.mjs): the signal arrives before the command could handle it.
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', './test/fixtures/hold-import.mjs', 'cli/main.ts', 'webhook', ...LOCAL_ANY_PORT, '--processes', '1', '--tls-cert', `${dir}/tls.crt`, '--tls-key', `${dir}/tls.key`], {
    cwd: ROOT,
    env: { ...process.env, ONNX_SIDECAR_CONFIG: `${dir}/config.yaml`, HOLD_IMPORT: '/injector/webhook-command.ts' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const exited = new Promise<[number | null, string | null]>(resolve => child.on('exit', (code, signal) => { resolve([code, signal]) }))
  const lines: Array<Record<string, any>> = []
  createInterface({ input: child.stdout }).on('line', line => lines.push(JSON.parse(line)))
  await new Promise<void>(resolve => createInterface({ input: child.stderr }).on('line', line => { if (line.startsWith('hold-import: holding')) resolve() }))
  child.kill('SIGTERM')
  t.same(await exited, [0, null], 'exit code 0, not killed by the signal')
  t.ok(lines.some(l => l.msg === 'shutting down' && l.signal === 'SIGTERM'))
})

t.test('--processes 2: a cluster that shares the port, sums its metrics, reloads, replaces a dead worker and stops on SIGTERM', async t => {
  const dir = t.testdir({ 'config.yaml': 'image: example/sidecar:9\n' })
  const ca = await certificates(dir, '21')
  const run = start(t, ['--tls-cert', `${dir}/tls.crt`, '--tls-key', `${dir}/tls.key`, '--config', `${dir}/config.yaml`, '--processes', '2', '--reload-interval', '1'])
  const { port, metricsPort, image, processes } = await run.listening
  t.same([processes, image], [2, 'example/sidecar:9'])
  t.equal(run.lines.filter(l => l.msg === 'injector listening').length, 1, 'one "listening" line, from the primary')

  // several connections at once: the primary deals them out to both workers
  const agent = new Agent({ connect: { ca: ca.pem, servername: 'localhost' }, connections: 8 })
  t.teardown(async () => { await agent.close() })
  const answers = await Promise.all(Array.from({ length: 40 }, async (_, i) => await post(port, agent, `c-${i}`)))
  t.ok(answers.every((a, i) => a.response.uid === `c-${i}` && a.response.patchType === 'JSONPatch'), 'every review answered with a patch')
  await until('40 log lines', () => run.lines.filter(l => l.msg === 'admission').length === 40)
  const pids = new Set(run.lines.filter(l => l.msg === 'admission').map(l => l.pid as number))
  t.equal(pids.size, 2, 'both workers answered reviews')
  t.notOk(pids.has(run.child.pid as number), 'the primary answers none itself')

  const text = await metrics(metricsPort)
  t.match(text, /onnx_sidecar_injector_admissions_total\{result="injected"\} 40\n/, 'admissions summed over the workers')
  t.match(text, /onnx_sidecar_injector_admission_duration_seconds_count 40\n/)
  t.match(text, /onnx_sidecar_injector_admission_duration_seconds_bucket\{le="\+Inf"\} 40\n/)
  t.match(text, /process_cpu_user_seconds_total/)

  // each worker reloads the rotated certificate by itself: fresh connections reach both
  t.equal(await servedSerial(port, ca.pem), '21')
  await certificates(dir, '22', ca)
  await until('every worker to serve the new certificate', async () => {
    const serials = await Promise.all(Array.from({ length: 4 }, async () => await servedSerial(port, ca.pem)))
    return serials.every(s => s === '22')
  })
  t.equal(run.lines.filter(l => l.msg === 'TLS certificate reloaded').length, 2, 'reloaded once in each worker')

  // a worker that dies is replaced; reviews keep being answered
  const [victim] = pids
  process.kill(victim as number, 'SIGKILL')
  await until('the replacement', () => run.lines.some(l => l.msg === 'webhook worker exited; starting another' && l.workerPid === victim))
  for (let i = 0; i < 4; i++) t.equal((await post(port, agent, `after-${i}`)).response.allowed, true)

  const all = new Set(run.lines.filter(l => l.pid !== run.child.pid).map(l => l.pid as number))
  run.child.kill('SIGTERM')
  t.equal(await run.exited, 0, 'exit code 0 after SIGTERM')
  t.ok(run.lines.some(l => l.msg === 'shutting down' && l.signal === 'SIGTERM'))
  const alive = [...all].filter(pid => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  })
  t.same(alive, [], 'no worker outlives the primary')
})

t.test('--processes 2 with a bad certificate exits 2 before forking, with one message', async t => {
  const dir = t.testdir({})
  const run = start(t, ['--tls-cert', `${dir}/missing.crt`, '--tls-key', `${dir}/missing.key`, '--processes', '2'])
  t.equal(await run.exited, 2)
  t.equal(run.stderr().match(/missing\.crt/g)?.length, 1, run.stderr())
})

t.test('by default listens on every interface, IPv6 and IPv4, with the limits in --help', async t => {
  const dir = t.testdir({})
  const ca = await certificates(dir, '31')
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'webhook', '--port', '0', '--metrics-port', '0', '--processes', '1', '--max-connections', '7', '--request-memory', '20mb', '--tls-cert', `${dir}/tls.crt`, '--tls-key', `${dir}/tls.key`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const listening = await new Promise<Record<string, any>>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', line => {
      const entry = JSON.parse(line) as Record<string, any>
      if (entry.msg === 'injector listening') resolve(entry)
    })
    child.on('exit', () => { reject(new Error('exited before listening')) })
  })
  const agent = new Agent({ connect: { ca: ca.pem, servername: 'localhost' } })
  t.teardown(async () => { await agent.close() })
  for (const host of ['[::1]', '127.0.0.1']) {
    const res = await request(`https://${host}:${listening.port as number}/mutate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(admissionReview(pod, { uid: host })), dispatcher: agent })
    t.equal((await res.body.json() as any).response.uid, host, `HTTPS answers on ${host}`)
    const metrics = await request(`http://${host}:${listening.metricsPort as number}/v2/health/live`)
    t.equal(metrics.statusCode, 200, `metrics server answers on ${host}`)
    await metrics.body.dump()
  }
  t.same([listening.maxConnections, listening.requestMemory], [7, 20 * 1024 * 1024], 'the limits are in the "listening" line')

  const help = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'webhook', '--help'], { cwd: ROOT, encoding: 'utf8' })
  for (const text of ['--processes (deprecated: --workers)', 'ONNX_SIDECAR_WEBHOOK_PROCESSES; deprecated: ONNX_SIDECAR_WEBHOOK_WORKERS', '--max-connections', 'ONNX_SIDECAR_WEBHOOK_MAX_CONNECTIONS', '--request-memory', 'ONNX_SIDECAR_WEBHOOK_REQUEST_MEMORY', '(default: "::")']) t.match(help.stdout, text)
})

/** A port nothing listens on right now. */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

t.test('its own variables (ONNX_SIDECAR_WEBHOOK_PORT, _HOST, _METRICS_PORT); the names serve shares, and --workers for --processes, still work, with one warning each', async t => {
  const dir = t.testdir({})
  await certificates(dir, '21')
  const files = ['--tls-cert', `${dir}/tls.crt`, '--tls-key', `${dir}/tls.key`]
  const deprecation = (l: Record<string, any>): boolean => /is deprecated for this command/.test(String(l.msg))

  const port = await freePort()
  // ONNX_SIDECAR_PORT set for serve (8500) in the same environment does not move the webhook
  const own = start(t, [...files, '--processes', '1'], { ONNX_SIDECAR_WEBHOOK_PORT: String(port), ONNX_SIDECAR_WEBHOOK_METRICS_PORT: '0', ONNX_SIDECAR_WEBHOOK_HOST: '127.0.0.1', ONNX_SIDECAR_PORT: '8500' }, [])
  t.equal((await own.listening).port, port)
  own.child.kill('SIGTERM')
  t.equal(await own.exited, 0)
  t.same(own.lines.filter(deprecation), [], 'no warning')

  const oldPort = await freePort()
  const old = start(t, [...files, '--workers', '2'], { ONNX_SIDECAR_PORT: String(oldPort), ONNX_SIDECAR_METRICS_PORT: '0', ONNX_SIDECAR_HOST: '127.0.0.1' }, [])
  const oldListening = await old.listening
  t.equal(oldListening.port, oldPort, 'ONNX_SIDECAR_PORT still sets the webhook port')
  t.equal(oldListening.processes, 2, '--workers still sets the processes')
  old.child.kill('SIGTERM')
  t.equal(await old.exited, 0)
  const warnings = old.lines.filter(deprecation)
  t.same(warnings.map(l => [l.level, l.msg]).sort(), [
    ['warn', 'environment variable ONNX_SIDECAR_HOST is deprecated for this command; use ONNX_SIDECAR_WEBHOOK_HOST (or --host)'],
    ['warn', 'environment variable ONNX_SIDECAR_METRICS_PORT is deprecated for this command; use ONNX_SIDECAR_WEBHOOK_METRICS_PORT (or --metrics-port)'],
    ['warn', 'environment variable ONNX_SIDECAR_PORT is deprecated for this command; use ONNX_SIDECAR_WEBHOOK_PORT (or --port)'],
    ['warn', 'flag --workers is deprecated for this command; use --processes']
  ], 'one warning per variable or flag, from the primary only (not once per process)')
})

t.test('the option table takes its defaults from WEBHOOK_DEFAULTS', async t => {
  const read = new Map(Object.entries(readConfig(WEBHOOK_OPTIONS, [], {})))
  const own = Object.keys(WEBHOOK_OPTIONS).filter(key => key in WEBHOOK_DEFAULTS)
  t.same(Object.keys(WEBHOOK_OPTIONS).filter(key => !own.includes(key)), ['kubeVersion', 'help', 'logLevel'], 'every other option has its default in WEBHOOK_DEFAULTS')
  for (const key of own) t.equal(read.get(key), WEBHOOK_DEFAULTS[key as keyof typeof WEBHOOK_DEFAULTS], key)
})
