/**
 * The REST app as a unit, over a fake model manager and a fake model version (no ONNX
 * Runtime): the route table (methods, 404/405 with codes), readiness read from the
 * manager's states, inference through the runner, shutdown, and the in-flight count.
 */
import t, { type Test } from 'tap'
import { connect, type AddressInfo } from 'node:net'
import { request } from 'undici'
import { close } from '../../../common/http.js'
import { errors } from '../../../sidecar/core/errors.js'
import { buildRestApp, type RestApp } from '../../../sidecar/http/app.js'
import { InferenceDispatcher } from '../../../sidecar/inference/dispatcher.js'
import { createSidecarMetrics } from '../../../sidecar/core/metrics.js'
import type { IndexEntry, ModelManager, ModelStatus } from '../../../sidecar/models/model-manager.js'
import type { ModelVersion } from '../../../sidecar/models/model-version.js'
import { InferenceObserver } from '../../../sidecar/inference/observation.js'
import { RequestMemory } from '../../../sidecar/codec/request-memory.js'
import type { JobResult } from '../../../sidecar/runtime/batcher.js'
import { fakeModelVersion } from '../../fixtures/fake-model-version.js'
import { headersOnly } from '../../fixtures/headers-only.js'
import { memoryLogger } from '../../fixtures/sidecar.js'

/** Model 'm' serves version 1; 'warming' is loading. */
function fakeManager () {
  const v1 = fakeModelVersion({ name: 'm', version: 1 })
  const states = new Map<string, ModelStatus>([['m', { state: 'READY' }], ['m/1', { state: 'READY' }], ['warming', { state: 'LOADING', reason: 'loading' }]])
  const asked: Array<[string, string | undefined]> = []
  const manager = {
    has: (name: string) => name === 'm' || name === 'warming',
    state: (name: string, version?: string): ModelStatus => {
      asked.push([name, version])
      return states.get(version === undefined ? name : `${name}/${version}`) ?? { state: 'UNKNOWN', error: version === undefined ? errors.MODEL_NOT_FOUND(name) : errors.VERSION_NOT_FOUND(name, version) }
    },
    // Apart from state(): readiness must be read from the states, not from what resolve() throws.
    resolve: (name: string, version?: string): ModelVersion => {
      if (name === 'warming') throw errors.MODEL_NOT_READY(name, version ?? 'latest', 'loading')
      if (name !== 'm') throw errors.MODEL_NOT_FOUND(name)
      if (version !== undefined && version !== '1') throw errors.VERSION_NOT_FOUND(name, version)
      return v1.mv
    },
    ready: () => [...states.values()].every(s => s.state === 'READY'),
    index: (): IndexEntry[] => [{ name: 'm', version: '1', state: 'READY', reason: '' }, { name: 'warming', version: '1', state: 'LOADING', reason: 'loading' }]
  }
  return { manager, states, asked, v1 }
}

async function app (t: Test, opts: { shuttingDown?: boolean } = {}) {
  const fake = fakeManager()
  const { logger } = memoryLogger()
  let shutting = opts.shuttingDown === true
  const manager = fake.manager as unknown as ModelManager
  const built: RestApp = buildRestApp({
    manager,
    runner: new InferenceDispatcher({ manager }),
    observer: new InferenceObserver({ metrics: createSidecarMetrics({ defaultMetrics: false }), logger, tracer: undefined, known: m => fake.manager.has(m) }),
    logger,
    tracer: undefined,
    bodyLimit: 1024 * 1024,
    memory: new RequestMemory(16 * 1024 * 1024),
    isShuttingDown: () => shutting,
    version: '9.9.9'
  })
  await new Promise<void>(resolve => built.server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { built.server.closeAllConnections(); await close(built.server) })
  const base = `http://127.0.0.1:${(built.server.address() as AddressInfo).port}`
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await request(base + path, { method: method as 'GET', body: body === undefined ? undefined : JSON.stringify(body), headers: body === undefined ? {} : { 'content-type': 'application/json' } })
    const text = await res.body.text()
    return { status: res.statusCode, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) }
  }
  return { ...fake, app: built, call, shutDown: () => { shutting = true } }
}

const inferBody = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }

t.test('routes: metadata; HEAD where GET; 405 naming the method; 404 with its code', async t => {
  const { call } = await app(t)
  t.match(await call('GET', '/v2'), { status: 200, body: { name: 'onnx-sidecar', version: '9.9.9' } })
  t.match(await call('GET', '/v2/'), { status: 200, body: { version: '9.9.9' } }, 'a trailing slash is the same path')
  t.equal((await call('HEAD', '/v2')).status, 200)
  t.match(await call('POST', '/v2'), { status: 405, headers: { allow: 'GET' }, body: { code: 'OS_ERR_METHOD_NOT_ALLOWED' } })
  t.match(await call('GET', '/v2/models/m/infer'), { status: 405, headers: { allow: 'POST' } })
  t.match(await call('GET', '/v3'), { status: 404, body: { code: 'OS_ERR_NOT_FOUND', error: 'no route for GET /v3' } })
  t.match(await call('GET', '/v2/models/m/versions'), { status: 404, body: { code: 'OS_ERR_NOT_FOUND' } })
  t.match(await call('GET', '/v2/health/sideways'), { status: 404, body: { code: 'OS_ERR_NOT_FOUND' } })
  t.match(await call('GET', '/v2/models/m'), { status: 200, body: { name: 'm', parameters: { version: '1' } } })
  t.match(await call('GET', '/v2/models/m/versions/3'), { status: 404, body: { code: 'OS_ERR_VERSION_NOT_FOUND' } })
})

t.test('readiness comes from the manager\'s states', async t => {
  const { call, states, asked, shutDown } = await app(t)
  t.match(await call('GET', '/v2/health/live'), { status: 200, body: { live: true } })
  t.match(await call('GET', '/v2/health/ready'), { status: 503, body: { ready: false } }, 'a model is loading')
  t.match(await call('GET', '/v2/models/m/ready'), { status: 200, body: { name: 'm', ready: true } })
  t.match(await call('GET', '/v2/models/m/versions/1/ready'), { status: 200, body: { ready: true } })
  t.same(asked.slice(-1), [['m', '1']], 'the version is asked about')
  t.match(await call('GET', '/v2/models/warming/ready'), { status: 503, body: { name: 'warming', ready: false } })
  t.match(await call('GET', '/v2/models/nope/ready'), { status: 404, body: { code: 'OS_ERR_MODEL_NOT_FOUND' } })
  t.match(await call('GET', '/v2/models/m/versions/2/ready'), { status: 404, body: { code: 'OS_ERR_VERSION_NOT_FOUND' } })
  states.set('m/1', { state: 'UNAVAILABLE', reason: 'the file changed and failed to load' })
  t.match(await call('GET', '/v2/models/m/versions/1/ready'), { status: 503, body: { ready: false } }, 'the state, not whether resolve() succeeds')
  states.set('m/1', { state: 'READY' })
  states.set('warming', { state: 'READY' })
  t.match(await call('GET', '/v2/health/ready'), { status: 200, body: { ready: true } })
  shutDown()
  t.match(await call('GET', '/v2/health/ready'), { status: 503, body: { ready: false } }, 'not ready once shutdown began')
})

t.test('inference: decoded, run on the version\'s batcher, encoded; errors carry their codes', async t => {
  const { call, v1 } = await app(t)
  const ok = await call('POST', '/v2/models/m/infer', { id: 'q1', ...inferBody })
  t.match(ok, { status: 200, body: { id: 'q1', model_name: 'm', model_version: '1', outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: [1] }] } })
  t.same(v1.jobs.at(-1)?.fetches, ['y'])
  t.match(await call('POST', '/v2/models/m/versions/1/infer', inferBody), { status: 200, body: { model_version: '1' } })
  t.match(await call('POST', '/v2/models/m/infer', { inputs: [] }), { status: 400, body: { code: 'OS_ERR_BAD_REQUEST' } })
  t.match(await call('POST', '/v2/models/nope/infer', inferBody), { status: 404, body: { code: 'OS_ERR_MODEL_NOT_FOUND' } })
  t.match(await call('POST', '/v2/models/warming/infer', inferBody), { status: 503, body: { code: 'OS_ERR_MODEL_NOT_READY' } })
  v1.answer = () => { throw errors.OVERLOADED('m', 1) }
  t.match(await call('POST', '/v2/models/m/infer', inferBody), { status: 503, headers: { 'retry-after': '1' }, body: { code: 'OS_ERR_OVERLOADED' } })
})

t.test('shutting down: inference is refused with its code, metadata still answers', async t => {
  const { call } = await app(t, { shuttingDown: true })
  t.match(await call('POST', '/v2/models/m/infer', inferBody), { status: 503, body: { code: 'OS_ERR_SHUTTING_DOWN' } })
  t.equal((await call('GET', '/v2/models/m')).status, 200)
})

t.test('repository index and rollout state', async t => {
  const { call } = await app(t)
  t.equal((await call('POST', '/v2/repository/index')).body.length, 2)
  t.same((await call('POST', '/v2/repository/index', { ready: true })).body.map((e: IndexEntry) => e.name), ['m'])
  t.match(await call('POST', '/v2/repository/index', { ready: 'yes' }), { status: 400, body: { error: 'ready must be a boolean' } })
  t.equal((await call('POST', '/v2/repository/index', {})).status, 200, 'an empty object is no filter')
  for (const body of [[], [{ ready: true }], 'ready', 1, true, null]) {
    t.match(await call('POST', '/v2/repository/index', body), { status: 400, body: { code: 'OS_ERR_BAD_REQUEST', error: /^the repository index body must be a JSON object/ } }, `${JSON.stringify(body)} is refused`)
  }
  t.match(await call('GET', '/v2/models/m/rollout'), { status: 200, body: { name: 'm', state: 'off' } })
  t.match(await call('GET', '/v2/models/nope/rollout'), { status: 404, body: { code: 'OS_ERR_MODEL_NOT_FOUND' } })
})

t.test('a declared content-length over the limit is 413 at once, without waiting for the body, and the connection closes', async t => {
  const { app: built } = await app(t)
  const { port } = built.server.address() as AddressInfo
  const open = async () => await new Promise<ReturnType<typeof connect>>(resolve => { const s = connect(port, '127.0.0.1', () => { resolve(s) }) })
  // 1 MiB + 1 is the limit plus one; 2^53 + 1 is past exact doubles; 2^64 - 1 is the largest node's parser takes.
  for (const length of [String(1024 * 1024 + 1), '9007199254740993', '18446744073709551615']) {
    for (const path of ['/v2/models/m/infer', '/v2/repository/index']) {
      const answer = await headersOnly(await open(), path, length)
      t.equal(answer.status, 413, `${path}, content-length ${length}: 413 (${answer.text.split('\r\n')[0] ?? ''})`)
      t.match(answer.text, /OS_ERR_BODY_TOO_LARGE/)
      t.ok(answer.closed, 'the server closes the connection: the body is not waited for')
    }
  }
  // 2^64 and beyond: node's HTTP parser refuses the header itself, also at once.
  const over = await headersOnly(await open(), '/v2/models/m/infer', '18446744073709551616')
  t.same([over.status, over.closed], [400, true], '2^64: 400 from the HTTP parser, connection closed')
})

t.test('inFlight() counts requests being answered; idle() resolves when none is', async t => {
  const { call, app: a, v1 } = await app(t)
  let release: (() => void) | undefined
  const held = new Promise<void>(resolve => { release = resolve })
  const answer = v1.answer
  let started: () => void = () => {}
  const running = new Promise<void>(resolve => { started = resolve })
  v1.answer = async job => { started(); await held; return await answer(job) as JobResult }
  const pending = call('POST', '/v2/models/m/infer', inferBody)
  await running
  t.equal(a.inFlight(), 1)
  let idle = false
  const idled = a.idle().then(() => { idle = true })
  t.equal(idle, false)
  release?.()
  t.equal((await pending).status, 200)
  await idled
  t.equal(a.inFlight(), 0)
})
