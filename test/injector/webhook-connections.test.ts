/**
 * The webhook under a connection flood: idle TCP connections (no TLS handshake) and idle
 * TLS connections, re-opened as they close, more than the connection cap of one process.
 * The API server's reviews, each on a new connection, must still be answered.
 */
import t, { type Test } from 'tap'
import { connect as tcpConnect } from 'node:net'
import { connect, type TLSSocket } from 'node:tls'
import { Client, request } from 'undici'
import { build, type WebhookOptions } from '../../injector/webhook-server.js'
import { WEBHOOK_DEFAULTS as DEFAULTS } from '../../injector/webhook-defaults.js'
import { createLogger } from '../../common/logger.js'
import { servingFiles, type Ca } from '../fixtures/injector/certs.js'
import { admissionReview, logSink, waitFor } from '../fixtures/injector/helpers.js'
import { connectionFlood } from '../fixtures/injector/connection-flood.js'

const annotated = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', annotations: { 'onnx-sidecar.io/model': 'iris' } }, spec: { containers: [{ name: 'app', image: 'app:1' }] } }
const REVIEWS = 100
const AT_ONCE = 4 // reviews in flight at once, each on its own new connection

async function setup (t: Test, opts: Partial<WebhookOptions> = {}): Promise<{ ca: Ca, webhook: ReturnType<typeof build> }> {
  const dir = t.testdir({})
  const { ca } = await servingFiles(dir, '0d')
  const webhook = build({ tlsCertFile: `${dir}/tls.crt`, tlsKeyFile: `${dir}/tls.key`, logger: createLogger({ level: 'warn', name: 'test', stream: logSink().stream }), ...opts })
  t.teardown(async () => { await webhook.close() })
  return { ca, webhook }
}

function tlsSocket (port: number, ca: Ca): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca: ca.pem, servername: 'localhost' }, () => { resolve(s) })
    s.once('error', reject)
  })
}

function closed (s: { once: (e: 'close', f: () => void) => unknown }): Promise<void> {
  return new Promise(resolve => { s.once('close', () => { resolve() }) })
}

async function scrape (port: number | undefined): Promise<string> {
  const res = await request(`http://127.0.0.1:${String(port)}/metrics`)
  return await res.body.text()
}

function sample (metrics: string, name: string): number {
  return Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(metrics)?.[1])
}

t.test('at the cap a new connection replaces the one handshaking or idle the longest, never one with a request in flight', async t => {
  t.setTimeout(30_000)
  const { ca, webhook } = await setup(t, { maxConnections: 2 })
  const { port, metricsPort } = await webhook.listen({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0 })
  const counts = (): string => JSON.stringify(webhook.connections.counts())
  const review = JSON.stringify(admissionReview(annotated, { uid: 'slow' }))

  // a review whose body is half sent: a request in flight
  const busy = await tlsSocket(port, ca)
  let answer = ''
  busy.on('data', (d: Buffer) => { answer += d.toString() })
  busy.write(`POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${review.length}\r\n\r\n${review.slice(0, 20)}`)
  await waitFor('the review in flight', () => webhook.connections.counts().active === 1)
  const plain = tcpConnect(port, '127.0.0.1') // never starts the TLS handshake
  plain.on('error', () => {})
  const plainClosed = closed(plain)
  await waitFor('the plain connection', () => webhook.connections.counts().handshaking === 1)

  const idle = await tlsSocket(port, ca) // at the cap: the handshaking one makes room
  const idleClosed = closed(idle)
  await plainClosed
  await waitFor('the new connection to be idle', () => counts() === '{"handshaking":0,"idle":1,"active":1}')
  const next = await tlsSocket(port, ca) // at the cap: the idle one makes room, not the busy one
  await idleClosed
  t.pass('the handshaking connection, then the idle one, were closed for new ones')

  next.on('data', () => {})
  next.write('POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{')
  await waitFor('two reviews in flight', () => webhook.connections.counts().active === 2)
  const refused = connect({ host: '127.0.0.1', port, ca: ca.pem, servername: 'localhost' })
  refused.on('error', () => {})
  await closed(refused)
  t.notOk(refused.authorized, 'every connection has a request in flight: the new one is closed before its handshake')

  busy.write(review.slice(20))
  await waitFor('the answer to the review in flight', () => answer.includes('"uid":"slow"'))
  t.match(answer, /^HTTP\/1.1 200 /, 'the review in flight was answered')
  await waitFor('the answered connection to be idle', () => counts() === '{"handshaking":0,"idle":1,"active":1}')

  const metrics = await scrape(metricsPort)
  t.equal(sample(metrics, 'onnx_sidecar_injector_connections_shed_total{state="handshaking"}'), 1)
  t.equal(sample(metrics, 'onnx_sidecar_injector_connections_shed_total{state="idle"}'), 1)
  t.equal(sample(metrics, 'onnx_sidecar_injector_connections_refused_total'), 1)
  t.equal(sample(metrics, 'onnx_sidecar_injector_connections{state="active"}'), 1, 'open connections by state')
  t.equal(sample(metrics, 'onnx_sidecar_injector_connections{state="idle"}'), 1)
  busy.destroy()
  next.destroy()
  await waitFor('no connections', () => webhook.connections.counts().idle + webhook.connections.counts().active === 0)
})

t.test(`${REVIEWS} reviews on new connections while 300 idle TCP and 20 idle TLS connections hold the cap of ${DEFAULTS.maxConnections}`, async t => {
  const { ca, webhook } = await setup(t)
  const { port, metricsPort } = await webhook.listen({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0 })

  const flood = connectionFlood({ port, plain: 300, idle: 20, ca: ca.pem })
  t.teardown(() => { flood.stop() })
  const open = (): Promise<number> => new Promise((resolve, reject) => { webhook.server.getConnections((err, n) => { if (err === null) resolve(n); else reject(err) }) })
  await waitFor('the flood to reach the cap', async () => flood.closed() > 0 && await open() >= DEFAULTS.maxConnections)

  const failures: string[] = []
  let answered = 0
  async function review (i: number): Promise<void> {
    const client = new Client(`https://127.0.0.1:${port}`, { connect: { ca: ca.pem, servername: 'localhost' }, headersTimeout: 10_000, bodyTimeout: 10_000 })
    try {
      const res = await client.request({ path: '/mutate', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(admissionReview(annotated, { uid: `r-${i}` })) })
      const json = await res.body.json() as any
      if (res.statusCode === 200 && json.response?.uid === `r-${i}` && json.response.allowed === true && json.response.patchType === 'JSONPatch') answered++
      else failures.push(`${res.statusCode} ${JSON.stringify(json).slice(0, 200)}`)
    } catch (err) {
      failures.push((err as Error).message)
    } finally {
      await client.destroy()
    }
  }
  let next = 0
  await Promise.all(Array.from({ length: AT_ONCE }, async () => {
    while (next < REVIEWS) await review(next++)
  }))
  flood.stop()

  const kinds = [...new Set(failures)].slice(0, 3).join('; ')
  t.comment(`${answered} of ${REVIEWS} reviews answered under the flood (${flood.opened()} flood connections opened, ${flood.closed()} closed by the server)${kinds === '' ? '' : `; failures: ${kinds}`}`)
  t.ok(answered >= REVIEWS * 0.99, `at least 99 % of the reviews answered (${answered} of ${REVIEWS})`)

  const metrics = await scrape(metricsPort)
  const shed = ['handshaking', 'idle'].map(state => sample(metrics, `onnx_sidecar_injector_connections_shed_total{state="${state}"}`))
  t.ok((shed[0] ?? 0) + (shed[1] ?? 0) >= REVIEWS, `connections closed to make room are counted (${shed.join(' handshaking, ')} idle)`)
})
