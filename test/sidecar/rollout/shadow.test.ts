import t from 'tap'
import path from 'node:path'
import { tracing } from '@opentelemetry/sdk-node'
import { startTracing } from '../../../sidecar/core/tracing.js'
import { metricsText, type Running } from '../../fixtures/sidecar.js'
import { fixtureModel, repositorySidecar } from '../../fixtures/repository.js'
import { IRIS_V1, irisModels, irisRequest, irisRows } from '../../fixtures/rollout/repo.js'

const exporter = new tracing.InMemorySpanExporter()
const otel = startTracing({ enabled: true, serviceName: 'rollout-test', spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] })
t.teardown(otel.shutdown)

async function rollout (s: Running, model = 'iris'): Promise<any> {
  const res = await s.get(`/v2/models/${model}/rollout`)
  if (res.status !== 200) throw new Error(`rollout state: ${res.status}`)
  return res.body
}

/** Waits until `done` shadow samples have been compared or dropped. */
async function settled (s: Running, done: number, model = 'iris'): Promise<any> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const st = await rollout(s, model)
    if (st.compared + st.shadow_dropped >= done) return st
    if (Date.now() > deadline) throw new Error(`shadow never settled: ${JSON.stringify(st)}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

t.test('shadow: live answers, the candidate runs after it and is compared', async t => {
  // iris runs inline (on the main thread); its shadow runs go to the one worker thread.
  const s = await repositorySidecar(t, await irisModels(IRIS_V1, 'rollout: { live: 1, candidate: 2, mode: shadow }'), { tracer: otel.tracer, workers: 1, inlineComputeUs: 100_000 })
  t.ok(s.sidecar.manager.resolve('iris', '1').inline, 'the live version runs inline')
  exporter.reset()

  t.same((await rollout(s)).state, 'observing')
  const rows = (await irisRows()).slice(0, 5)
  for (const [i, row] of rows.entries()) {
    const res = await s.post('/v2/models/iris/infer', irisRequest(row, `r${i}`))
    t.equal(res.status, 200)
    t.equal(res.body.model_version, '1', 'the live version answers')
    await settled(s, i + 1)
  }
  const st = await rollout(s)
  t.match(st, { mode: 'shadow', live_version: '1', candidate_version: '2', compared: 5, agreed: 5, disagreed: 0, agreement: 1, shadow_dropped: 0, decision: null, promotion: null })
  t.same(st.outputs, { label: { max_abs_diff: 0, mean_abs_diff: 0 }, probabilities: { max_abs_diff: 0, mean_abs_diff: 0 } }, 'the same model: no difference')

  // Requests that name a version are not part of the rollout.
  t.equal((await s.post('/v2/models/iris/versions/2/infer', irisRequest(rows[0] as number[]))).body.model_version, '2')
  t.equal((await s.post('/v2/models/iris/versions/1/infer', irisRequest(rows[0] as number[]))).body.model_version, '1')
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal((await rollout(s)).compared, 5, 'explicit-version requests are never compared')

  const text = await metricsText(s.metricsUrl)
  t.match(text, /onnx_sidecar_rollout_comparisons_total\{model="iris",live_version="1",candidate_version="2",result="agree"\} 5/)
  t.match(text, /onnx_sidecar_rollout_output_abs_diff_count\{model="iris",live_version="1",candidate_version="2",output="probabilities",stat="max"\} 5/)
  t.match(text, /onnx_sidecar_rollout_output_abs_diff_bucket\{le="0",model="iris",live_version="1",candidate_version="2",output="probabilities",stat="mean"\} 5/)
  t.match(text, /onnx_sidecar_rollout_agreement_ratio\{model="iris",live_version="1",candidate_version="2"\} 1/)

  const spans = exporter.getFinishedSpans()
  const shadows = spans.filter(sp => sp.name === 'rollout.shadow')
  t.equal(shadows.length, 5, 'one shadow span per comparison')
  const first = shadows[0] as tracing.ReadableSpan
  t.equal(first.attributes['onnx_sidecar.rollout'], 'shadow')
  t.equal(first.attributes['onnx_sidecar.version'], 2)
  t.equal(first.attributes['onnx_sidecar.rollout.result'], 'agree')
  const server = spans.find(sp => sp.name === 'inference' && sp.spanContext().traceId === first.spanContext().traceId)
  t.ok(server, 'the shadow span belongs to the trace of the request it shadows')
  t.equal(first.parentSpanContext?.spanId, server?.spanContext().spanId)
})

t.test('canary work is marked on the server span', async t => {
  const { inCanary } = await import('../../../sidecar/rollout/sticky.js')
  const s = await repositorySidecar(t, await irisModels(IRIS_V1, 'rollout: { live: 1, candidate: 2, mode: canary, share: 0.5, sample: 0 }'), { tracer: otel.tracer })
  const keys = Array.from({ length: 20 }, (_, i) => `k${i}`)
  const cand = keys.find(k => inCanary('iris:2', k, 0.5)) as string
  const live = keys.find(k => !inCanary('iris:2', k, 0.5)) as string
  for (const [key, arm, version] of [[cand, 'candidate', 2], [live, 'live', 1]] as const) {
    exporter.reset()
    t.equal((await s.post('/v2/models/iris/infer', irisRequest([5.1, 3.5, 1.4, 0.2], key))).body.model_version, String(version))
    const server = exporter.getFinishedSpans().find(sp => sp.name === 'inference') as tracing.ReadableSpan
    t.equal(server.attributes['onnx_sidecar.rollout'], 'canary')
    t.equal(server.attributes['onnx_sidecar.rollout.arm'], arm)
    t.equal(server.attributes['onnx_sidecar.version'], version, 'the span names the version that answered')
  }
})

t.test('shadow work is dropped, not queued, while another shadow run is in progress', async t => {
  // The deliberately slow fixture model (~100 ms a call) as versions 1 and 2.
  const slow = path.join(fixtureModel('slow'), '1', 'model.onnx')
  const s = await repositorySidecar(t, { slow: { versions: { 1: slow, 2: slow }, config: 'rollout: { live: 1, candidate: 2 }\n' } }, { workers: 2, prefix: 'rollout-slow-' })
  const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 256], data: new Array(256).fill(0.5) }] }

  const a = await s.post('/v2/models/slow/infer', body)
  t.equal(a.status, 200)
  // A's shadow run now takes ~100 ms on the other worker: B's sample is dropped.
  const b = await s.post('/v2/models/slow/infer', body)
  t.equal(b.status, 200)
  t.equal(b.body.model_version, '1')
  const st = await settled(s, 2, 'slow')
  t.equal(st.compared, 1)
  t.equal(st.shadow_dropped, 1)
  t.match(await metricsText(s.metricsUrl), /onnx_sidecar_rollout_shadow_dropped_total\{model="slow",reason="in_progress"\} 1/)

  // With nothing in progress, the next sample runs again.
  await s.post('/v2/models/slow/infer', body)
  t.equal((await settled(s, 3, 'slow')).compared, 2)

  // A burst: live work keeps the queue and the workers busy; shadow work never piles up.
  const burst = await Promise.all(Array.from({ length: 6 }, async () => await s.post('/v2/models/slow/infer', body)))
  t.ok(burst.every(r => r.status === 200 && r.body.model_version === '1'))
  const after = await settled(s, 9, 'slow')
  t.equal(after.compared + after.shadow_dropped, 9, 'every sample is compared or dropped')
  t.ok(after.shadow_dropped >= 5, `at most one shadow run at a time (dropped ${after.shadow_dropped})`)
  t.equal(s.sidecar.manager.resolve('slow', '2').batcher.queued, 0, 'nothing waits in the candidate queue')
})

t.test('a live version on the only worker is never shadowed: the worker stays free for live requests', async t => {
  const s = await repositorySidecar(t, await irisModels(IRIS_V1, 'rollout: { live: 1, candidate: 2 }'), { workers: 1, inlineComputeUs: 0 })
  for (let i = 0; i < 3; i++) {
    t.equal((await s.post('/v2/models/iris/infer', irisRequest([5.1, 3.5, 1.4, 0.2]))).status, 200)
    await settled(s, i + 1)
  }
  t.match(await rollout(s), { compared: 0, shadow_dropped: 3, state: 'blocked', reason: 'shadow needs an idle worker: give the sidecar 2 workers (onnx-sidecar.io/cpu-limit: "4" or --workers 2)' })
  t.match(await metricsText(s.metricsUrl), /onnx_sidecar_rollout_shadow_dropped_total\{model="iris",reason="worker"\} 3/)
  t.equal(s.logs.filter(l => l.msg === 'rollout: comparisons cannot run; every shadow run is dropped (reason worker) and no decision will be taken').length, 1, 'one warning')
})

t.test('rollout state endpoint: off without a rollout, 404 for an unknown model', async t => {
  const s = await repositorySidecar(t, await irisModels(undefined, ''), { workers: 2 })
  t.same((await s.get('/v2/models/iris/rollout')).body, { name: 'iris', state: 'off' })
  t.equal((await s.get('/v2/models/nope/rollout')).status, 404)
  const res = await s.post('/v2/models/iris/rollout', {})
  t.equal(res.status, 405)
})
