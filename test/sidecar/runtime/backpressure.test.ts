import t, { type Test } from 'tap'
import { startSidecar, FIXTURE_REPO, metricsText, untilMetrics, type Running } from '../../fixtures/sidecar.js'
import { fixtureModel, repositorySidecar } from '../../fixtures/repository.js'

const slowBody = (extra: Record<string, unknown> = {}) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 256], data: new Array(256).fill(0.2) }], ...extra })

/** A sidecar serving only the ~110 ms `slow` model with the given config.yaml. */
async function slowSidecar (t: Test, config: string): Promise<Running> {
  return await repositorySidecar(t, { slow: { copy: fixtureModel('slow'), config } })
}

/** Resolves once `n` batches have started on the worker (counted when a batch starts). */
async function untilBatches (s: Running, n: number): Promise<void> {
  await untilMetrics(s.metricsUrl, text => Number(/onnx_sidecar_inference_batch_size_count\{model="slow",version="1"\} (\d+)/.exec(text)?.[1] ?? 0) >= n, `${n} batches started`)
}

t.test('a full queue answers 503 with Retry-After, and the queued requests still complete', async t => {
  const s = await slowSidecar(t, 'max_batch_size: 0\ndynamic_batching: { max_queue_size: 2 }\nwarmup: false\n')
  const results = await Promise.all(Array.from({ length: 8 }, async () => await s.post('/v2/models/slow/infer', slowBody())))
  const ok = results.filter(r => r.status === 200)
  const rejected = results.filter(r => r.status === 503)
  t.equal(ok.length + rejected.length, 8, 'every request is either served or rejected')
  t.ok(rejected.length >= 2, `some requests were turned away (${rejected.length})`)
  t.ok(ok.length >= 2, `queued requests were served (${ok.length})`)
  for (const r of rejected) {
    t.equal(r.headers['retry-after'], '1')
    t.match(r.body.error, "model 'slow' queue is full (2 requests)")
  }
  t.match(await metricsText(s.metricsUrl), /onnx_sidecar_inference_requests_total\{model="slow",version="1",code="503"\} [2-9]/)
})

t.test('a request whose deadline passes in the queue is dropped with 504 before it runs', async t => {
  const s = await slowSidecar(t, 'max_batch_size: 0\nwarmup: false\n')
  const busy = Array.from({ length: 3 }, async () => await s.post('/v2/models/slow/infer', slowBody()))
  await untilBatches(s, 2) // two running on the worker, the third queued
  const late = await s.post('/v2/models/slow/infer', slowBody({ parameters: { timeout: 5000 } })) // 5 ms
  t.equal(late.status, 504)
  t.match(late.body.error, /waited longer than its 5 ms deadline/)
  t.same((await Promise.all(busy)).map(r => r.status), [200, 200, 200])
})

t.test('a request whose client disconnected is not run', async t => {
  const s = await slowSidecar(t, 'max_batch_size: 0\nwarmup: false\n')
  const busy = Array.from({ length: 3 }, async () => await s.post('/v2/models/slow/infer', slowBody()))
  await untilBatches(s, 2) // two running on the worker, the third queued
  const ac = new AbortController()
  const gone = s.client.request({ method: 'POST', path: '/v2/models/slow/infer', body: JSON.stringify(slowBody()), signal: ac.signal })
  setTimeout(() => ac.abort(), 30)
  await t.rejects(gone)
  t.same((await Promise.all(busy)).map(r => r.status), [200, 200, 200])
  const metrics = await metricsText(s.metricsUrl)
  t.match(metrics, /onnx_sidecar_inference_requests_total\{model="slow",version="1",code="499"\} 1/, 'counted as abandoned')
  t.match(metrics, /onnx_sidecar_inference_batch_size_count\{model="slow",version="1"\} 3\b/, 'only the three live requests reached the model')
})

t.test('one bad request never fails its batch-mates', async t => {
  const s = await startSidecar({ repository: FIXTURE_REPO, models: [{ name: 'add' }, { name: 'slow' }] })
  t.teardown(s.close)
  // Requests with different non-batch shapes cannot share a batch; a batch of valid
  // requests all get their own rows back.
  const rows = Array.from({ length: 24 }, (_, i) => [i, i + 1, i + 2, i + 3])
  const results = await Promise.all(rows.map(async (r, i) => {
    const bad = i % 5 === 0
    const body = bad
      ? { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 'four'] }] }
      : { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: r }] }
    return { bad, r, res: await s.post('/v2/models/add/versions/2/infer', body) }
  }))
  for (const { bad, r, res } of results) {
    if (bad) {
      t.equal(res.status, 400)
    } else {
      t.equal(res.status, 200)
      t.same(res.body.outputs[0].data, r.map(v => v + 2))
    }
  }
  const metrics = await metricsText(s.metricsUrl)
  const count = Number(/onnx_sidecar_inference_batch_size_count\{model="add",version="2"\} (\d+)/.exec(metrics)?.[1])
  const sum = Number(/onnx_sidecar_inference_batch_size_sum\{model="add",version="2"\} (\d+)/.exec(metrics)?.[1])
  t.ok(sum >= 19, `all good rows ran (${sum}, warm-up included)`)
  t.ok(count < sum, `concurrent requests were batched: ${sum} rows in ${count} runs`)
})

t.test('a client that hangs up mid-body is counted as abandoned (499), not as a server error', async t => {
  const net = await import('node:net')
  const s = await startSidecar({ repository: FIXTURE_REPO, models: [{ name: 'add' }] })
  t.teardown(s.close)
  const { port } = new URL(s.url)
  const socket = net.connect(Number(port), '127.0.0.1')
  await new Promise(resolve => socket.once('connect', resolve))
  socket.write('POST /v2/models/add/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"inputs":')
  await new Promise(resolve => setTimeout(resolve, 50))
  socket.destroy()
  const metrics = await untilMetrics(s.metricsUrl, text => /code="499"/.test(text), 'the abandoned request')
  t.match(metrics, /onnx_sidecar_inference_requests_total\{model="add",version="",code="499"\} 1/)
  t.notMatch(metrics, /code="500"/)
  t.notOk(s.logs.some(l => l.msg === 'unexpected error'), 'not logged as a bug')
})
