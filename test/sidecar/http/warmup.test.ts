/**
 * The warm-up before ready (`--warmup-requests`): the sidecar's own requests through its
 * REST listener, kept out of the metrics, with readiness held until they end.
 */
import t from 'tap'
import { request } from 'undici'
import { connectHost, WarmupState, WARMUP_QUERY } from '../../../sidecar/http/warmup.js'
import { createSidecar, portOf } from '../../../sidecar/sidecar.js'
import { EXAMPLE_REPO, FIXTURE_REPO, memoryLogger, metricsText, startSidecar } from '../../fixtures/sidecar.js'
import { IRIS_GOOD, irisRepo } from '../../fixtures/rollout/repo.js'

const IRIS = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] }

/** The value of every sample of `name` in a Prometheus text, by its labels. */
function samples (text: string, name: string): string[] {
  return text.split('\n').filter(l => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
}

t.test('WarmupState: its token is honoured only while it warms', async t => {
  const off = new WarmupState(false)
  t.equal(off.warming, false, 'no warm-up: ready as soon as the models are')
  t.equal(off.query, '')
  t.equal(off.isOwn('/v2/models/iris/infer?onnx-sidecar-warmup='), false)
  const on = new WarmupState(true)
  t.equal(on.warming, true)
  const query = on.query
  t.match(query, new RegExp(`^\\?${WARMUP_QUERY}=[0-9a-f]{32}$`))
  t.not(new WarmupState(true).query, query, 'a new token per process')
  t.equal(on.isOwn(`/v2/models/iris/versions/1/infer${query}`), true)
  t.equal(on.isOwn(`/v2/models/iris/infer${query}x`), false)
  t.equal(on.isOwn(`/v2/models/iris/infer?${WARMUP_QUERY}=${'0'.repeat(32)}`), false, 'another token')
  t.equal(on.isOwn('/v2/models/iris/infer'), false)
  t.equal(on.isOwn(undefined), false)
  on.end()
  t.equal(on.warming, false)
  t.equal(on.query, '')
  t.equal(on.isOwn(`/v2/models/iris/infer${query}`), false, 'after the warm-up, the token means nothing')
})

t.test('connectHost: an unspecified address is reached on loopback', async t => {
  t.equal(connectHost('::'), '::1')
  t.equal(connectHost('0.0.0.0'), '127.0.0.1')
  t.equal(connectHost('127.0.0.1'), '127.0.0.1')
  t.equal(connectHost('::1'), '::1')
})

t.test('the warm-up is neither counted nor logged per request; the requests after it are', async t => {
  const s = await startSidecar({ repository: EXAMPLE_REPO, warmup: { requests: 60, timeoutMs: 60_000 } })
  t.teardown(s.close)
  const line = s.logs.find(l => l.msg === 'warmed up')
  t.ok(line, 'a line says it warmed up')
  t.match(line, { component: 'warmup', requests: 60, failed: 0, connections: 9, bulk: /^(iris|digits)\/\d+$/ })
  t.notOk('cut' in (line ?? {}), 'all of them were sent')
  t.equal(s.logs.filter(l => l.msg === 'inference request failed').length, 0)
  let text = await metricsText(s.metricsUrl)
  t.same(samples(text, 'onnx_sidecar_inference_requests_total'), [], 'no request counted')
  t.same(samples(text, 'onnx_sidecar_inference_batch_size_count'), [], 'no batch counted')
  t.same(samples(text, 'onnx_sidecar_inference_request_duration_seconds_count'), [])
  t.equal((await s.get('/v2/health/ready')).status, 200)

  t.equal((await s.post('/v2/models/iris/infer', IRIS)).status, 200)
  t.equal((await s.post(`/v2/models/iris/infer?${WARMUP_QUERY}=${'f'.repeat(32)}`, IRIS)).status, 200)
  text = await metricsText(s.metricsUrl)
  t.match(samples(text, 'onnx_sidecar_inference_requests_total'), [/model="iris",version="1",code="200"\} 2$/], 'a client\'s requests are counted, whatever query they carry')
  t.match(samples(text, 'onnx_sidecar_inference_batch_size_count'), [/model="iris",version="1"\} 2$/])
})

t.test('the warm-up takes no part in a rollout: no canary pick, no shadow, no evidence', async t => {
  const repo = await irisRepo(IRIS_GOOD, 'rollout: { live: 1, candidate: 2, mode: canary, share: 0.5, sample: 1 }')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir, warmup: { requests: 60, timeoutMs: 60_000 } })
  t.teardown(s.close)
  t.match(s.logs.find(l => l.msg === 'warmed up'), { requests: 60, failed: 0, bulk: 'iris/1' }, 'to the live version, which answers requests without one')
  t.match((await s.get('/v2/models/iris/rollout')).body, { mode: 'canary', live: { requests: 0 }, candidate: { requests: 0 }, compared: 0 })
  t.notMatch(await metricsText(s.metricsUrl), /onnx_sidecar_rollout_canary_requests_total\{/)
})

t.test('readiness waits for the warm-up; a warm-up cut short by its timeout still ends in ready', async t => {
  const { logger, logs } = memoryLogger()
  const timeoutMs = 700
  const sidecar = createSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }], workers: 1, threads: 1, bodyLimit: 1 << 20, pollIntervalMs: 0, watch: false, logger, defaultMetrics: false, warmup: { requests: 100_000, timeoutMs } })
  await new Promise<void>(resolve => sidecar.rest.server.listen(0, '127.0.0.1', resolve))
  const metricsPort = await sidecar.metricsServer.listen(0, '127.0.0.1')
  const { grpcClient } = await import('../../fixtures/grpc-client.js')
  const grpc = grpcClient(`127.0.0.1:${await sidecar.grpc.listen(0, '127.0.0.1')}`)
  t.teardown(async () => { grpc.close(); await sidecar.close(1000) })
  const url = `http://127.0.0.1:${portOf(sidecar.rest.server)}`
  let started = false
  const starting = sidecar.start().then(() => { started = true })
  const seen = new Set<string>()
  let pollsWhileLoaded = 0
  while (!started) {
    const loaded = logs.some(l => l.msg === 'model version ready')
    const rest = await request(`${url}/v2/health/ready`)
    await rest.body.dump()
    const probe = await request(`http://127.0.0.1:${metricsPort}/v2/health/ready`)
    await probe.body.dump()
    const { ready } = await grpc.ServerReady({}) as { ready: boolean }
    // A poll that raced the end of the start-up may see ready; any other must not.
    if (!started) {
      seen.add(`${rest.statusCode} ${probe.statusCode} ${String(ready)}`)
      if (loaded) pollsWhileLoaded++
    }
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  await starting
  t.same([...seen], ['503 503 false'], 'REST, the probe port and gRPC say not ready until the warm-up ended')
  t.ok(pollsWhileLoaded > 3, `polled while the model was loaded and the warm-up ran (${pollsWhileLoaded} times)`)
  const line = logs.find(l => l.msg === 'warmed up')
  t.match(line, { cut: 'timeout', failed: 0, bulk: 'iris/1' })
  t.ok((line?.requests as number) < 100_000, 'fewer than asked: the timeout ended it')
  t.ok((line?.ms as number) >= timeoutMs - 50, `it ran for its timeout (${String(line?.ms)} ms)`)
  const rest = await request(`${url}/v2/health/ready`)
  await rest.body.dump()
  t.equal(rest.statusCode, 200, 'ready once it ended')
})

t.test('a model slower than 20 ms a request ends the warm-up after three of them', async t => {
  const { logger, logs } = memoryLogger()
  const sidecar = createSidecar({ repository: FIXTURE_REPO, models: [{ name: 'slow' }], workers: 1, threads: 1, bodyLimit: 1 << 20, pollIntervalMs: 0, watch: false, logger, defaultMetrics: false, warmup: { requests: 1000, timeoutMs: 60_000 } })
  await new Promise<void>(resolve => sidecar.rest.server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => sidecar.close(1000))
  await sidecar.start()
  t.match(logs.find(l => l.msg === 'warmed up'), { cut: 'slow', requests: 1 + 3, failed: 0, bulk: 'slow/1' }, 'the first round, then three slow ones')
})

t.test('shutdown during the warm-up ends it at once', async t => {
  const { logger, logs } = memoryLogger()
  const sidecar = createSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }], workers: 1, threads: 1, bodyLimit: 1 << 20, pollIntervalMs: 0, watch: false, logger, defaultMetrics: false, warmup: { requests: 100_000, timeoutMs: 60_000 } })
  await new Promise<void>(resolve => sidecar.rest.server.listen(0, '127.0.0.1', resolve))
  const starting = sidecar.start()
  while (!logs.some(l => l.msg === 'model version ready')) await new Promise(resolve => setTimeout(resolve, 20))
  await new Promise(resolve => setTimeout(resolve, 300)) // a few warm-up requests in
  const t0 = Date.now()
  await sidecar.close(5000)
  await starting
  t.ok(Date.now() - t0 < 5000, 'the close did not wait for the warm-up\'s 60 s')
  const line = logs.find(l => l.msg === 'warm-up requests failed' || l.msg === 'warmed up')
  t.match(line, { cut: 'shutdown' })
  t.ok((line?.requests as number) < 100_000)
})
