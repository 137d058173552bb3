/**
 * The metrics and health listener defaults to `::`, which node opens dual-stack: kubelet
 * probes reach it on IPv4-only, IPv6-only and dual-stack pods alike. Inference stays on
 * 127.0.0.1.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { networkInterfaces } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { request } from 'undici'
import { ROOT, EXAMPLE_REPO } from '../fixtures/sidecar.js'

const CLI = path.join(ROOT, 'dist', 'cli', 'main.js')
const hasIpv6Loopback = Object.values(networkInterfaces()).flat().some(a => a?.address === '::1')

t.test('default metrics host: health answers on ::1 and 127.0.0.1; inference only on 127.0.0.1', { skip: hasIpv6Loopback ? false : 'no IPv6 loopback on this host' }, async t => {
  const child = spawn(process.execPath, [CLI, 'serve', '--model-repository', EXAMPLE_REPO, '--model', 'iris', '--port', '0', '--grpc-port', 'off', '--metrics-port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const rl = createInterface({ input: child.stdout })
  const serving = await new Promise<Record<string, string>>(resolve => rl.on('line', line => {
    const rec = JSON.parse(line)
    if (rec.msg === 'onnx-sidecar serving') resolve(rec)
  }))
  const m = /^http:\/\/\[::\]:(\d+)\/metrics$/.exec(serving.metrics ?? '')
  t.ok(m, `the log names the address as [::] (${serving.metrics ?? ''})`)
  const port = m?.[1] ?? '0'
  for (const host of ['[::1]', '127.0.0.1']) {
    const r = await request(`http://${host}:${port}/v2/health/live`)
    t.equal(r.statusCode, 200, `live on ${host}`)
    t.same(await r.body.json(), { live: true })
  }
  const inferencePort = new URL(serving.inference ?? '').port
  const v4 = await request(`http://127.0.0.1:${inferencePort}/v2/health/live`)
  await v4.body.dump()
  t.equal(v4.statusCode, 200, 'inference on 127.0.0.1')
  await t.rejects(request(`http://[::1]:${inferencePort}/v2/health/live`), { code: 'ECONNREFUSED' }, 'inference not on ::1')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
})
