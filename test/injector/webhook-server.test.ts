/**
 * The webhook over real TLS: a throw-away CA and serving certificate, AdmissionReviews
 * posted with undici, certificate, key and config rotated on disk while the server runs.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { connect, type PeerCertificate } from 'node:tls'
import { Agent, request } from 'undici'
import { build, type Webhook } from '../../injector/webhook-server.js'
import { createLogger } from '../../common/logger.js'
import { makeCa, makeServing, servingFiles } from '../fixtures/injector/certs.js'
import { admissionReview, logSink } from '../fixtures/injector/helpers.js'
import { headersOnly } from '../fixtures/headers-only.js'

const annotated = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'web-', annotations: { 'onnx-sidecar.io/model': 'iris' } },
  spec: { containers: [{ name: 'app', image: 'app:1' }] }
}
const plain = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'plain' }, spec: { containers: [{ name: 'app', image: 'app:1' }] } }
const invalid = { ...annotated, metadata: { name: 'bad', annotations: { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/port': '99999' } } }

async function waitFor (what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

function peerSerial (port: number, ca: string, maxVersion?: 'TLSv1.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...(maxVersion === undefined ? {} : { maxVersion, minVersion: 'TLSv1' }) }, () => {
      const cert: PeerCertificate = socket.getPeerCertificate()
      socket.end()
      resolve(cert.serialNumber.toLowerCase())
    })
    socket.on('error', reject)
  })
}

t.test('the webhook over HTTPS', async t => {
  const dir = t.testdir({})
  const certFile = `${dir}/tls.crt`
  const keyFile = `${dir}/tls.key`
  const configFile = `${dir}/config.yaml`
  const ca = await makeCa()
  const first = await makeServing(ca, '0a')
  writeFileSync(certFile, first.cert)
  writeFileSync(keyFile, first.key)
  writeFileSync(configFile, 'image: example/onnx-sidecar:first\n')

  const sink = logSink()
  const webhook: Webhook = build({
    tlsCertFile: certFile,
    tlsKeyFile: keyFile,
    configFile,
    logger: createLogger({ level: 'info', name: 'test', stream: sink.stream }),
    reloadIntervalMs: 50,
    maxBodyBytes: 256 * 1024
  })
  const { port, metricsPort } = await webhook.listen({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0 })
  const agent = new Agent({ connect: { ca: ca.pem, servername: 'localhost' }, connections: 2 })
  t.teardown(async () => {
    await agent.close()
    await webhook.close()
  })
  const base = `https://127.0.0.1:${port}`

  async function post (body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number, json: any }> {
    const res = await request(`${base}/mutate`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body), dispatcher: agent })
    return { status: res.statusCode, json: await res.body.json() }
  }
  function patchOf (json: any): Array<{ op: string, path: string, value?: any }> {
    return JSON.parse(Buffer.from(json.response.patch, 'base64').toString('utf8'))
  }

  t.test('annotated pod: allowed with a base64 JSON Patch, uid echoed', async t => {
    const res = await post(admissionReview(annotated, { uid: 'u-1', namespace: 'shop' }))
    t.equal(res.status, 200)
    t.equal(res.json.apiVersion, 'admission.k8s.io/v1')
    t.equal(res.json.kind, 'AdmissionReview')
    t.equal(res.json.response.uid, 'u-1')
    t.equal(res.json.response.allowed, true)
    t.equal(res.json.response.patchType, 'JSONPatch')
    const patch = patchOf(res.json)
    const init = patch.find(op => op.path === '/spec/initContainers')
    t.equal(init?.value[0].image, 'example/onnx-sidecar:first', 'the config file\'s image')
    t.ok(patch.some(op => op.path === '/metadata/annotations/prometheus.io~1scrape'), 'JSON Pointer escaping of "/"')
  })

  t.test('pod without the annotation: allowed, no patch', async t => {
    const res = await post(admissionReview(plain, { uid: 'u-2' }))
    t.same(res.json.response, { uid: 'u-2', allowed: true })
  })

  t.test('invalid annotation: denied with a message naming annotation and value', async t => {
    const res = await post(admissionReview(invalid, { uid: 'u-3' }))
    t.equal(res.status, 200)
    t.equal(res.json.response.allowed, false)
    t.equal(res.json.response.status.code, 400)
    t.equal(res.json.response.status.message, 'annotation onnx-sidecar.io/port: "99999" is not a port number (1-65535)')
  })

  t.test('HTTP errors', async t => {
    t.equal((await post('{not json')).status, 400)
    t.match((await post({ kind: 'Pod' })).json, { code: 'OS_ERR_INJ_BAD_REVIEW' })
    t.match((await post({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} })).json, { error: /request.uid is missing/ })
    const media = await post(admissionReview(plain), { 'content-type': 'text/plain' })
    t.same([media.status, media.json.code], [415, 'OS_ERR_INJ_UNSUPPORTED_MEDIA_TYPE'])
    const big = await post(admissionReview({ ...plain, metadata: { name: 'x', labels: { a: 'x'.repeat(300 * 1024) } } }))
    t.same([big.status, big.json.code], [413, 'OS_ERR_INJ_BODY_TOO_LARGE'])
    const get = await request(`${base}/mutate`, { dispatcher: agent })
    t.equal(get.statusCode, 405)
    await get.body.dump()
    const missing = await request(`${base}/nope`, { dispatcher: agent })
    t.same([missing.statusCode, (await missing.body.json() as any).code], [404, 'OS_ERR_INJ_NOT_FOUND'])
    for (const path of ['/healthz', '/v2/health/ready']) {
      const res = await request(base + path, { dispatcher: agent })
      t.equal(res.statusCode, 200, path)
      await res.body.dump()
    }
  })

  t.test('a client that hangs up mid-body is logged and counted, not left pending', async t => {
    const socket = connect({ host: '127.0.0.1', port, ca: ca.pem, servername: 'localhost' })
    await new Promise(resolve => socket.once('secureConnect', resolve))
    socket.write('POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"kind":')
    await new Promise(resolve => setTimeout(resolve, 50))
    socket.destroy()
    await waitFor('the log line', async () => sink.lines().some(l => l.result === 'error' && /closed the connection/.test(String(l.reason))))
    t.pass('logged as an error')
  })

  t.test('a declared content-length over the limit is 413 at once, without waiting for the body, and the connection closes', async t => {
    for (const length of [String(256 * 1024 + 1), '9007199254740993', '18446744073709551615']) {
      const socket = connect({ host: '127.0.0.1', port, ca: ca.pem, servername: 'localhost' })
      await new Promise(resolve => socket.once('secureConnect', resolve))
      const answer = await headersOnly(socket, '/mutate', length)
      t.equal(answer.status, 413, `content-length ${length}: 413 (${answer.text.split('\r\n')[0] ?? ''})`)
      t.match(answer.text, /OS_ERR_INJ_BODY_TOO_LARGE/)
      t.ok(answer.closed, 'the server closes the connection: the body is not waited for')
    }
  })

  t.test('TLS 1.1 is refused', async t => {
    await t.rejects(peerSerial(port, ca.pem, 'TLSv1.1'))
  })

  t.test('one log line per admission', async t => {
    const lines = sink.lines().filter(l => l.msg === 'admission')
    const line = lines.find(l => l.uid === 'u-1')
    t.match(line, { uid: 'u-1', namespace: 'shop', pod: 'web-*', result: 'injected', durationMs: Number })
    t.match(lines.find(l => l.uid === 'u-3'), { result: 'denied', reason: /onnx-sidecar.io\/port/ })
  })

  t.test('metrics in their own registry, with the default process metrics', async t => {
    const res = await request(`http://127.0.0.1:${String(metricsPort)}/metrics`)
    const text = await res.body.text()
    t.match(text, /onnx_sidecar_injector_admissions_total\{result="injected"\} 1\n/)
    t.match(text, /onnx_sidecar_injector_admissions_total\{result="skipped"\} 1\n/)
    t.match(text, /onnx_sidecar_injector_admissions_total\{result="denied"\} 1\n/)
    t.match(text, /onnx_sidecar_injector_admissions_total\{result="error"\} [1-9]/, 'bad requests and the hang-up count as errors')
    t.match(text, /onnx_sidecar_injector_admission_duration_seconds_count [1-9]/)
    t.match(text, /process_cpu_user_seconds_total/)
    const ready = await request(`http://127.0.0.1:${String(metricsPort)}/v2/health/ready`)
    t.equal(ready.statusCode, 200)
    await ready.body.dump()
  })

  t.test('a rotated certificate is served without restarting', async t => {
    t.equal(await peerSerial(port, ca.pem), '0a', 'the first certificate is served')
    const second = await makeServing(ca, '0b')
    // cert-manager writes one file, then the other: a mismatched pair is not loaded
    writeFileSync(certFile, second.cert)
    await webhook.reload()
    t.equal(await peerSerial(port, ca.pem), '0a', 'the old pair stays while the key does not match')
    t.ok(sink.lines().some(l => l.msg === 'new TLS certificate and key do not load; keeping the current one'), 'the mismatch is logged')
    writeFileSync(keyFile, second.key)
    await waitFor('the new certificate', async () => await peerSerial(port, ca.pem) === '0b')
    t.pass('new certificate served after the periodic check')
    const res = await post(admissionReview(plain, { uid: 'after-rotation' }))
    t.equal(res.json.response.uid, 'after-rotation', 'admissions keep working')
  })

  t.test('a changed config file is picked up; an invalid one is ignored', async t => {
    writeFileSync(configFile, 'image: example/onnx-sidecar:second\n')
    await waitFor('the new config', async () => webhook.config().image === 'example/onnx-sidecar:second')
    const res = await post(admissionReview(annotated))
    t.equal(patchOf(res.json).find(op => op.path === '/spec/initContainers')?.value[0].image, 'example/onnx-sidecar:second')
    writeFileSync(configFile, 'image: 42\nbogus: true\n')
    await webhook.reload()
    t.equal(webhook.config().image, 'example/onnx-sidecar:second', 'previous config kept')
    t.match(sink.lines().find(l => l.msg === 'invalid injection config; keeping the current one'), { code: 'OS_ERR_INJ_INVALID_CONFIG', err: /bogus/ })
  })

  t.test('certificate and key replaced with garbage: the last good pair is kept, the failure logged and counted', async t => {
    const failures = async (): Promise<number> => {
      const res = await request(`http://127.0.0.1:${String(metricsPort)}/metrics`)
      return Number(/^onnx_sidecar_injector_reload_failures_total\{file="tls"\} (\d+)$/m.exec(await res.body.text())?.[1])
    }
    const before = await failures()
    const served = await peerSerial(port, ca.pem)
    const warnings = (): number => sink.lines().filter(l => l.msg === 'new TLS certificate and key do not load; keeping the current one').length
    const warned = warnings()
    for (const [cert, key] of [['garbage', 'more garbage'], ['', ''], ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n']]) {
      writeFileSync(certFile, cert as string)
      writeFileSync(keyFile, key as string)
      await webhook.reload()
      t.equal(await peerSerial(port, ca.pem), served, `still the last good certificate after ${JSON.stringify((cert as string).slice(0, 16))}`)
    }
    // the periodic check may also catch a new cert beside the old key: one more bad pair
    const logged = warnings() - warned
    t.ok(logged >= 3, `each bad pair logged once (${logged})`)
    await webhook.reload()
    t.equal(warnings() - warned, logged, 'not again while the files stay the same')
    t.equal(await failures() - before, logged, 'counted in onnx_sidecar_injector_reload_failures_total{file="tls"}')
    const res = await post(admissionReview(plain, { uid: 'with-garbage-on-disk' }))
    t.equal(res.json.response.uid, 'with-garbage-on-disk', 'admissions keep working')
    const third = await makeServing(ca, '0c')
    writeFileSync(certFile, third.cert)
    writeFileSync(keyFile, third.key)
    await webhook.reload()
    t.equal(await peerSerial(port, ca.pem), '0c', 'a good pair afterwards is served')
  })

  t.test('config reload failures are counted too', async t => {
    const res = await request(`http://127.0.0.1:${String(metricsPort)}/metrics`)
    t.match(await res.body.text(), /^onnx_sidecar_injector_reload_failures_total\{file="config"\} 1$/m, 'the invalid config above')
  })
})

t.test('start-up fails on a key that does not match the certificate', async t => {
  const dir = t.testdir({})
  const ca = await makeCa()
  const a = await makeServing(ca, '01')
  const b = await makeServing(ca, '02')
  writeFileSync(`${dir}/tls.crt`, a.cert)
  writeFileSync(`${dir}/tls.key`, b.key)
  const logger = createLogger({ level: 'silent', name: 'test', stream: logSink().stream })
  t.throws(() => build({ tlsCertFile: `${dir}/tls.crt`, tlsKeyFile: `${dir}/tls.key`, logger }))
  t.throws(() => build({ tlsCertFile: `${dir}/missing.crt`, tlsKeyFile: `${dir}/tls.key`, logger }), { code: 'ENOENT' })
})

t.test('--kube-version reaches the admissions: a model image on an older API server is denied', async t => {
  const dir = t.testdir({})
  const { ca } = await servingFiles(dir, '0b')
  const sink = logSink()
  const logger = createLogger({ level: 'info', name: 'test', stream: sink.stream })
  const webhook = build({ tlsCertFile: `${dir}/tls.crt`, tlsKeyFile: `${dir}/tls.key`, logger, kubeVersion: { major: 1, minor: 34, text: 'v1.34.3' } })
  const { port } = await webhook.listen({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0 })
  const agent = new Agent({ connect: { ca: ca.pem, servername: 'localhost' } })
  t.teardown(async () => {
    await agent.close()
    await webhook.close()
  })
  const withImage = { ...annotated, metadata: { name: 'm', annotations: { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/model-image': `127.0.0.1:5000/models@sha256:${'1'.repeat(64)}` } } }
  const res = await request(`https://127.0.0.1:${port}/mutate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(admissionReview(withImage, { uid: 'k-1' })), dispatcher: agent })
  const json = await res.body.json() as any
  t.equal(res.statusCode, 200)
  t.match(json.response, { uid: 'k-1', allowed: false, status: { code: 400, message: /needs Kubernetes 1\.35 or later .* the API server is v1\.34\.3/ } })
  t.match(sink.lines().find(l => l.msg === 'injector listening'), { kubeVersion: 'v1.34.3' }, 'the version is logged at start-up')
})
