import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { startSidecar, EXAMPLE_REPO, FIXTURE_REPO, ROOT, metricsText } from '../../fixtures/sidecar.js'

const heldout = JSON.parse(readFileSync(path.join(ROOT, 'test', 'fixtures', 'models', 'iris-heldout.json'), 'utf8')) as {
  raw_features: number[][], expected_label: number[], expected_probabilities: number[][]
}

const where = (logs: Array<Record<string, unknown>>, model: string): unknown =>
  logs.find(l => l.msg === 'model version ready' && l.model === model)?.runsOn

t.test('tiny models run inline on the main thread and answer exactly as on the workers', async t => {
  const s = await startSidecar({ repository: EXAMPLE_REPO, inlineComputeUs: 100_000 })
  t.teardown(s.close)
  t.equal(where(s.logs, 'iris'), 'main thread (inline)')
  t.equal(where(s.logs, 'digits'), 'main thread (inline)')

  // Concurrent single rows: they queue while the main thread is busy and run as batches.
  const answers = await Promise.all(heldout.raw_features.map(async row =>
    await s.post('/v2/models/iris/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: row }] })))
  answers.forEach((res, i) => {
    t.equal(res.status, 200)
    t.equal(res.body.outputs[0].data[0], heldout.expected_label[i], `row ${i}: label`)
    const probs = res.body.outputs[1].data as number[]
    t.ok(probs.every((p, j) => Math.abs(p - (heldout.expected_probabilities[i]?.[j] as number)) < 1e-5), `row ${i}: probabilities within 1e-5`)
  })
  const metrics = await metricsText(s.metricsUrl)
  const count = Number(/onnx_sidecar_inference_batch_size_count\{model="iris",version="1"\} (\d+)/.exec(metrics)?.[1])
  t.ok(count < heldout.raw_features.length, `45 requests ran in ${count} batches`)
})

t.test('models over the bound stay on the workers', async t => {
  const s = await startSidecar({ repository: FIXTURE_REPO, models: [{ name: 'slow' }, { name: 'add' }], inlineComputeUs: 1000 })
  t.teardown(s.close)
  t.equal(where(s.logs, 'slow'), 'workers', 'a ~100 ms model never blocks the event loop')
  t.equal(where(s.logs, 'add'), 'main thread (inline)')
  const res = await s.post('/v2/models/add/versions/1/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] })
  t.same(res.body.outputs[0].data, [2, 3, 4, 5])
})

t.test('0 keeps every model on the workers', async t => {
  const s = await startSidecar({ repository: EXAMPLE_REPO, models: [{ name: 'iris' }], inlineComputeUs: 0 })
  t.teardown(s.close)
  t.equal(where(s.logs, 'iris'), 'workers')
})
