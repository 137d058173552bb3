/**
 * The webhook's limits over real TLS: the memory budget for reviews in flight (503 with
 * Retry-After), hostile bodies just under the body limit, nesting depth, the header/handshake
 * timeouts, and the dual-stack default listener. The connection cap: webhook-connections.test.ts.
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { connect as tcpConnect } from 'node:net'
import { connect, type TLSSocket } from 'node:tls'
import { Agent, request } from 'undici'
import { build, type WebhookOptions } from '../../injector/webhook-server.js'
import { defaultRequestMemory, WEBHOOK_DEFAULTS as DEFAULTS } from '../../injector/webhook-defaults.js'
import { DEFAULT_MEMORY_BUDGET } from '../../common/memory-limit.js'
import { MAX_POD_ITEMS } from '../../injector/pod-limits.js'
import { createLogger } from '../../common/logger.js'
import { servingFiles, type Ca } from '../fixtures/injector/certs.js'
import { admissionReview, logSink, waitFor } from '../fixtures/injector/helpers.js'

const MiB = 1024 * 1024
const annotated = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', annotations: { 'onnx-sidecar.io/model': 'iris' } }, spec: { containers: [{ name: 'app', image: 'app:1' }] } }

async function setup (t: Test, opts: Partial<WebhookOptions> = {}): Promise<{ ca: Ca, dir: string, sink: ReturnType<typeof logSink>, webhook: ReturnType<typeof build> }> {
  const dir = t.testdir({})
  const { ca } = await servingFiles(dir, '0c')
  const sink = logSink()
  const webhook = build({ tlsCertFile: `${dir}/tls.crt`, tlsKeyFile: `${dir}/tls.key`, logger: createLogger({ level: 'info', name: 'test', stream: sink.stream }), ...opts })
  t.teardown(async () => { await webhook.close() })
  return { ca, dir, sink, webhook }
}

function agentFor (t: Test, ca: Ca, connections = 8): Agent {
  const agent = new Agent({ connect: { ca: ca.pem, servername: 'localhost' }, connections, headersTimeout: 120_000, bodyTimeout: 120_000 })
  t.teardown(async () => { await agent.close() })
  return agent
}

async function post (agent: Agent, base: string, body: string | Buffer): Promise<{ status: number, headers: Record<string, unknown>, json: any }> {
  const res = await request(`${base}/mutate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, dispatcher: agent })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, json: text === '' ? undefined : JSON.parse(text) }
}

function tlsSocket (port: number, ca: Ca, host = '127.0.0.1'): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, ca: ca.pem, servername: 'localhost' }, () => { resolve(s) })
    s.once('error', reject)
  })
}

function closed (s: { once: (e: 'close', f: () => void) => unknown }): Promise<void> {
  return new Promise(resolve => { s.once('close', () => { resolve() }) })
}

/** Milliseconds until `s` closes, or undefined if it is still open after `ms`. */
async function closedWithin (s: { once: (e: 'close', f: () => void) => unknown, destroy: () => void }, ms: number): Promise<number | undefined> {
  const start = Date.now()
  let timer: NodeJS.Timeout | undefined
  const result = await Promise.race([
    closed(s).then(() => Date.now() - start),
    new Promise<undefined>(resolve => { timer = setTimeout(() => { resolve(undefined) }, ms) })
  ])
  clearTimeout(timer)
  if (result === undefined) s.destroy()
  return result
}

function peakRssMiB (): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
  return m === null ? Math.round(process.memoryUsage().rss / MiB) : Math.round(Number(m[1]) / 1024)
}

type Shape = 'containers' | 'env' | 'volumes' | 'annotation' | 'not-a-pod'

/**
 * A body of about `size` bytes: an AdmissionReview of an annotated pod with one list (or
 * the model annotation) filled with one item repeated, or a bare `{"request":…}` with an
 * array of `{}`. Built with Buffer.fill, so the test's own memory stays small.
 */
function hostileReview (uid: string, size: number, shape: Shape): Buffer {
  const placeholder = '"FILL"'
  const pod = { ...annotated, spec: { containers: [{ name: 'app', image: 'app:1' }] } } as Record<string, any>
  let item = '{}'
  switch (shape) {
    case 'containers': pod.spec.containers = ['FILL']; break
    case 'env': pod.spec.containers[0].env = ['FILL']; item = '{"name":"E","value":"v"}'; break
    case 'volumes': pod.spec.volumes = ['FILL']; break
    case 'annotation': pod.metadata = { name: 'web', annotations: { 'onnx-sidecar.io/model': 'FILL' } }; item = 'a'; break
    case 'not-a-pod': break
  }
  const text = shape === 'not-a-pod' ? `{"request":{"object":{"a":[${placeholder}]}}}` : JSON.stringify(admissionReview(pod, { uid }))
  const at = text.indexOf(placeholder)
  const [head, tail] = shape === 'annotation' ? [text.slice(0, at + 1), text.slice(at + placeholder.length - 1)] : [text.slice(0, at), text.slice(at + placeholder.length)]
  const pattern = `${item},`
  const count = Math.floor((size - head.length - tail.length - item.length) / pattern.length)
  return Buffer.concat([Buffer.from(head), Buffer.alloc(count * pattern.length, pattern), Buffer.from(item + tail)])
}

t.test('reviews beyond the request memory are refused with 503 and Retry-After, then served again', async t => {
  const { ca, webhook, sink } = await setup(t, { requestMemoryBytes: 256 * 1024 })
  const { port, metricsPort } = await webhook.listen({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0 })
  const base = `https://127.0.0.1:${port}`
  const agent = agentFor(t, ca)
  const good = JSON.stringify(admissionReview(annotated, { uid: 'small' }))

  // a slow client: 254 KiB of a 300 KiB body sent, the rest not yet; a small review needs more than the 2 KiB left
  const slow = await tlsSocket(port, ca)
  slow.on('data', () => {})
  slow.write(`POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${300 * 1024}\r\n\r\n`)
  slow.write('{"filler":"' + 'x'.repeat(254 * 1024 - 11))
  await waitFor('the slow body to arrive', async () => inUse(await fetchMetrics(metricsPort)) === 254 * 1024)

  const refused = await post(agent, base, good)
  t.equal(refused.status, 503, 'refused while the slow review holds the budget')
  t.equal(refused.headers['retry-after'], '1')
  t.equal(refused.json.code, 'OS_ERR_INJ_OVERLOADED')
  t.match(refused.json.error, /^too many reviews in flight: this one needs about \d+ KiB of the 256 KiB request memory; retry shortly$/)

  slow.destroy() // the slow client hangs up: what it held is given back
  await waitFor('the slow review\'s memory to be given back', async () => inUse(await fetchMetrics(metricsPort)) === 0)
  const again = await post(agent, base, good)
  t.equal(again.status, 200, 'the budget is free again')
  t.equal(again.json.response.allowed, true)

  // a review charged more than the whole budget (twice its 200 KiB, at least) never fits
  const large = await post(agent, base, JSON.stringify(admissionReview({ ...annotated, metadata: { ...annotated.metadata, labels: { filler: 'x'.repeat(200 * 1024) } } })))
  t.same([large.status, large.json.code], [413, 'OS_ERR_INJ_REVIEW_TOO_COSTLY'], 'a review charged more than the budget is refused with 413: retrying would not help')
  t.match(large.json.error, /^this review would need about \d+ KiB of memory to parse, more than the 256 KiB request memory$/)

  const metrics = await fetchMetrics(metricsPort)
  t.match(metrics, /onnx_sidecar_injector_overloaded_total 1\n/, 'the 503 is counted')
  t.equal(inUse(metrics), 0, 'nothing stays reserved')
  t.ok(sink.lines().some(l => l.result === 'error' && /too many reviews in flight/.test(String(l.reason))), 'logged')
})

async function fetchMetrics (port: number | undefined): Promise<string> {
  const res = await request(`http://127.0.0.1:${String(port)}/metrics`)
  return await res.body.text()
}

function inUse (metrics: string): number {
  return Number(/^onnx_sidecar_injector_request_memory_bytes (\d+)$/m.exec(metrics)?.[1])
}

t.test('JSON nested deeper than the limit is refused before parsing', async t => {
  const { ca, webhook } = await setup(t)
  const { port } = await webhook.listen({ host: '127.0.0.1', port: 0 })
  const agent = agentFor(t, ca)
  const deep = JSON.stringify(admissionReview({ ...annotated, spec: { containers: [{ name: 'onnx-sidecar', x: 'NEST' }, { name: 'app' }] } })).replace('"NEST"', '['.repeat(100_000) + ']'.repeat(100_000))
  const res = await post(agent, `https://127.0.0.1:${port}`, deep)
  t.equal(res.status, 400)
  t.same([res.json.code, res.json.error], ['OS_ERR_INJ_BAD_REVIEW', 'not an AdmissionReview: the JSON is nested more than 128 levels deep'])
  const ok = await post(agent, `https://127.0.0.1:${port}`, JSON.stringify(admissionReview(annotated)))
  t.equal(ok.json.response.allowed, true, 'a normal review still works')
})

t.test('hostile bodies just under the body limit, all at once: each answered, memory bounded, then a good review works', async t => {
  const size = DEFAULTS.maxBodyBytes - 1024
  const shapes = ['containers', 'env', 'volumes', 'annotation', 'not-a-pod', 'containers', 'env', 'not-a-pod'] as const
  const bodies = shapes.map((shape, i) => hostileReview(`h-${i}`, size, shape))
  for (const b of bodies) t.ok(b.length > size - 4096 && b.length < DEFAULTS.maxBodyBytes, `a body of ${b.length} bytes`)
  const good = JSON.stringify(admissionReview(annotated, { uid: 'after' }))

  await t.test('with the default request memory (128 MiB), all at once: refused unparsed, or parsed and denied', async t => {
    const { ca, webhook } = await setup(t, { requestMemoryBytes: defaultRequestMemory(1, DEFAULT_MEMORY_BUDGET) })
    const { port } = await webhook.listen({ host: '127.0.0.1', port: 0 })
    const base = `https://127.0.0.1:${port}`
    const agent = agentFor(t, ca, 16)
    const before = peakRssMiB()
    const answers = await Promise.all(bodies.map(async body => await post(agent, base, body)))
    for (const [i, a] of answers.entries()) {
      const shape = shapes[i] as Shape
      if (shape === 'env' || shape === 'annotation') {
        // charged less than 128 MiB: parsed when the others leave room, else 503
        t.ok(a.status === 503 || (a.status === 200 && a.json.response.allowed === false), `${shape}: refused, or denied (${a.status})`)
      } else {
        t.same([a.status, a.json.code], [413, 'OS_ERR_INJ_REVIEW_TOO_COSTLY'], `${shape}: charged more than 128 MiB: 413 unparsed`)
      }
    }
    const after = await post(agent, base, good)
    t.match([after.status, after.json.response], [200, { uid: 'after', allowed: true, patchType: 'JSONPatch' }], 'a good review afterwards')
    t.comment(`peak RSS ${peakRssMiB()} MiB (${before} MiB before) after ${bodies.length} bodies of ${(size / MiB).toFixed(1)} MiB at once: ${answers.map(a => a.status).join(', ')}`)
  })

  await t.test('with room to parse them, one at a time: each parsed and judged', async t => {
    const { ca, webhook } = await setup(t, { requestMemoryBytes: 1024 * MiB })
    const { port } = await webhook.listen({ host: '127.0.0.1', port: 0 })
    const base = `https://127.0.0.1:${port}`
    const agent = agentFor(t, ca)
    const before = peakRssMiB()
    for (const [i, shape] of shapes.entries()) {
      const a = await post(agent, base, bodies[i] as Buffer)
      if (shape === 'not-a-pod') {
        t.same([a.status, a.json.code], [400, 'OS_ERR_INJ_BAD_REVIEW'], `${shape}: not an AdmissionReview`)
        continue
      }
      t.equal(a.status, 200, `${shape}: answered with an AdmissionReview`)
      t.match(a.json.response, { uid: `h-${i}`, allowed: false, status: { code: 400, message: shape === 'annotation' ? /annotations hold more than 262144 bytes/ : new RegExp(`more than ${MAX_POD_ITEMS} annotations, containers`) } }, `${shape}: denied as too large`)
    }
    const after = await post(agent, base, good)
    t.match([after.status, after.json.response], [200, { uid: 'after', allowed: true, patchType: 'JSONPatch' }], 'a good review afterwards')
    t.comment(`peak RSS ${peakRssMiB()} MiB (${before} MiB before) after parsing ${bodies.length} bodies of ${(size / MiB).toFixed(1)} MiB one by one`)
  })
})

t.test('header, handshake and request timeouts', async t => {
  await t.test('the defaults', async t => {
    const { webhook } = await setup(t)
    t.equal(webhook.server.headersTimeout, 10_000)
    t.equal(webhook.server.requestTimeout, 30_000)
    t.equal(webhook.server.keepAliveTimeout, 65_000)
    t.equal(webhook.connections.max, 256)
    t.equal(webhook.server.maxConnections, undefined, 'not Node.js\'s cap, which closes every new connection at the cap (webhook-connections.test.ts)')
    t.equal(webhook.metricsServer.headersTimeout, 10_000)
    t.equal(webhook.metricsServer.maxConnections, 64)
  })
  const { ca, webhook } = await setup(t, { timeouts: { headersTimeoutMs: 300, requestTimeoutMs: 600, handshakeTimeoutMs: 300 } })
  const { port } = await webhook.listen({ host: '127.0.0.1', port: 0 })

  await t.test('a client that never finishes its headers is cut off', async t => {
    const s = await tlsSocket(port, ca)
    let answer = ''
    s.on('data', (d: Buffer) => { answer += d.toString() })
    s.write('POST /mutate HTTP/1.1\r\nhost: localhost\r\n')
    await closed(s)
    t.match(answer, /^HTTP\/1.1 408/, '408 Request Timeout, then closed')
  })
  await t.test('a client that never sends all of its body is cut off', async t => {
    const s = await tlsSocket(port, ca)
    let answer = ''
    s.on('data', (d: Buffer) => { answer += d.toString() })
    const start = Date.now()
    s.write('POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{')
    const after = await closedWithin(s, 3000)
    t.ok(after !== undefined, `the server closed the connection (${after === undefined ? 'still open after 3000' : `after ${after}`} ms; request timeout 600 ms, checked every 300 ms)`)
    t.ok(Date.now() - start >= 500, 'not before the request timeout')
    t.match(answer, /^HTTP\/1.1 408/, '408 Request Timeout, then closed')
  })
  await t.test('a TCP client that never starts the TLS handshake is cut off', async t => {
    const s = tcpConnect(port, '127.0.0.1')
    s.on('error', () => {})
    let received = 0
    s.on('data', (d: Buffer) => { received += d.length })
    await new Promise(resolve => s.once('connect', resolve))
    const start = Date.now()
    const after = await closedWithin(s, 3000)
    t.ok(after !== undefined, `the server closed the connection (${after === undefined ? 'still open after 3000' : `after ${after}`} ms; handshake timeout 300 ms)`)
    t.ok(Date.now() - start >= 250, 'not before the handshake timeout')
    t.equal(received, 0, 'with no bytes sent')
  })
  await t.test('a kept-alive connection idle longer than the header timeout is still usable', async t => {
    const agent = agentFor(t, ca, 1)
    const first = await post(agent, `https://127.0.0.1:${port}`, JSON.stringify(admissionReview(annotated, { uid: 'k1' })))
    await new Promise(resolve => setTimeout(resolve, 900))
    const second = await post(agent, `https://127.0.0.1:${port}`, JSON.stringify(admissionReview(annotated, { uid: 'k2' })))
    t.same([first.json.response.uid, second.json.response.uid], ['k1', 'k2'])
  })
})

t.test('the default listener takes IPv6 and IPv4 connections', async t => {
  const { ca, webhook } = await setup(t)
  const { port, metricsPort } = await webhook.listen({ port: 0, metricsPort: 0 })
  const agent = agentFor(t, ca)
  for (const host of ['[::1]', '127.0.0.1']) {
    const res = await post(agent, `https://${host}:${port}`, JSON.stringify(admissionReview(annotated, { uid: host })))
    t.equal(res.json.response.uid, host, `HTTPS on ${host}`)
    const health = await request(`http://${host}:${metricsPort}/v2/health/ready`)
    t.equal(health.statusCode, 200, `metrics server on ${host}`)
    await health.body.dump()
  }
})
