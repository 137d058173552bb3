/** `onnx-sidecar webhook` as the chart runs it: a child process with real certificate files. */
import t from 'tap'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { Agent, request } from 'undici'
import { makeCa, makeServing } from '../fixtures/injector/certs.js'
import { admissionReview } from '../fixtures/injector/helpers.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

t.test('starts, answers over HTTPS, serves metrics and stops on SIGTERM', async t => {
  const dir = t.testdir({ 'config.yaml': 'image: example/sidecar:9\n' })
  const ca = await makeCa()
  const serving = await makeServing(ca, '11')
  writeFileSync(`${dir}/tls.crt`, serving.cert)
  writeFileSync(`${dir}/tls.key`, serving.key)
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'webhook', '--tls-cert', `${dir}/tls.crt`, '--tls-key', `${dir}/tls.key`, '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1'], {
    cwd: ROOT,
    env: { ...process.env, ONNX_SIDECAR_CONFIG: `${dir}/config.yaml` },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => { resolve(code) }))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const lines: Array<Record<string, any>> = []
  const listening = new Promise<Record<string, any>>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', line => {
      const entry = JSON.parse(line) as Record<string, any>
      lines.push(entry)
      if (entry.msg === 'injector listening') resolve(entry)
    })
    child.on('exit', () => { reject(new Error('exited before listening')) })
  })
  const { port, metricsPort, image } = await listening
  t.equal(image, 'example/sidecar:9', 'config from ONNX_SIDECAR_CONFIG')

  const agent = new Agent({ connect: { ca: ca.pem, servername: 'localhost' } })
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', annotations: { 'onnx-sidecar.io/model': 'iris' } }, spec: { containers: [{ name: 'app' }] } }
  const res = await request(`https://127.0.0.1:${port as number}/mutate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(admissionReview(pod, { uid: 'cli-1' })), dispatcher: agent })
  const json = await res.body.json() as any
  t.match(json.response, { uid: 'cli-1', allowed: true, patchType: 'JSONPatch' })
  await agent.close()
  const metrics = await request(`http://127.0.0.1:${metricsPort as number}/metrics`)
  t.match(await metrics.body.text(), /onnx_sidecar_injector_admissions_total\{result="injected"\} 1/)

  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exit code 0 after SIGTERM')
  t.ok(lines.some(l => l.msg === 'admission' && l.uid === 'cli-1'))
  t.ok(lines.some(l => l.msg === 'shutting down' && l.signal === 'SIGTERM'))
})
