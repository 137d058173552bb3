/**
 * Two real trained candidates for the example iris model (test/fixtures/rollout/make-iris-v2.py):
 * a sound retrain is promoted, a model trained on shuffled labels is rolled back, and the
 * agreement the sidecar reports is the one an offline comparison of the two ONNX files
 * (onnxruntime-node, here in the test) gives over the same requests.
 */
import t from 'tap'
import * as ort from 'onnxruntime-node'
import { parseModelConfig } from '../../../sidecar/models/model-config.js'
import { metricsText, startSidecar } from '../../fixtures/sidecar.js'
import { IRIS_BAD, IRIS_GOOD, IRIS_V1, irisRepo, irisRequest, irisRows } from '../../fixtures/rollout/repo.js'

const ROLLOUT = 'rollout: { live: 1, candidate: 2, promotion: { min_requests: 89, min_agreement: 0.9 } }'

/** Offline: both versions on the normalised rows; per request, top-1 (the `label` output) equal or not. */
async function offline (candidate: string, rows: number[][], configText: string): Promise<{ agree: boolean[], maxProbDiff: number }> {
  const norm = parseModelConfig(configText, 'config.yaml').preprocess.get('input')
  if (norm?.kind !== 'minmax') throw new Error('iris normalises with minmax')
  const f = Math.fround
  const x = Float32Array.from(rows.flatMap(r => r.map((v, j) => f(f(f(v) - f(norm.min[j] as number)) / f(f(norm.max[j] as number) - f(norm.min[j] as number))))))
  const run = async (file: string): Promise<{ label: BigInt64Array, probabilities: Float32Array }> => {
    const session = await ort.InferenceSession.create(file)
    try {
      const out = await session.run({ input: new ort.Tensor('float32', x, [rows.length, 4]) })
      return { label: out.label?.data as BigInt64Array, probabilities: out.probabilities?.data as Float32Array }
    } finally {
      await session.release()
    }
  }
  const a = await run(IRIS_V1)
  const b = await run(candidate)
  let maxProbDiff = 0
  for (let i = 0; i < a.probabilities.length; i++) maxProbDiff = Math.max(maxProbDiff, Math.abs((a.probabilities[i] as number) - (b.probabilities[i] as number)))
  return { agree: rows.map((_, i) => a.label[i] === b.label[i]), maxProbDiff }
}

for (const [which, file, expected] of [['good', IRIS_GOOD, 'promoted'], ['bad', IRIS_BAD, 'rolled_back']] as const) {
  t.test(`iris v2 (${which}) behind a shadow is ${expected}`, async t => {
    const repo = await irisRepo(file, ROLLOUT)
    t.teardown(repo.remove)
    const s = await startSidecar({ repository: repo.dir, workers: 2 })
    t.teardown(s.close)
    const rows = await irisRows()
    t.equal(rows.length, 89)
    const { readFile } = await import('node:fs/promises')
    const ref = await offline(file, rows, await readFile(`${repo.dir}/iris/config.yaml`, 'utf8'))
    const offlineAgreement = ref.agree.filter(Boolean).length / rows.length

    let st: any
    for (const [i, row] of rows.entries()) {
      const res = await s.post('/v2/models/iris/infer', irisRequest(row, `flower-${i}`))
      t.equal(res.status, 200)
      if (res.body.model_version !== '1') t.fail(`request ${i} answered by version ${res.body.model_version} before the decision`)
      // One request at a time, each compared before the next: the sidecar compares exactly these 89.
      const deadline = Date.now() + 30_000
      for (;;) {
        st = (await s.get('/v2/models/iris/rollout')).body
        if (st.compared + st.shadow_dropped > i) break
        if (Date.now() > deadline) throw new Error(`no comparison for request ${i}`)
        await new Promise(resolve => setTimeout(resolve, 2))
      }
    }
    t.equal(st.shadow_dropped, 0, 'nothing dropped: one request at a time leaves a worker idle')
    t.equal(st.compared, 89)
    t.equal(st.state, expected)
    t.equal(st.agreement, offlineAgreement, `reported agreement ${st.agreement} = offline ${offlineAgreement}`)
    t.equal(st.agreed, ref.agree.filter(Boolean).length)
    t.ok(Math.abs(st.outputs.probabilities.max_abs_diff - ref.maxProbDiff) < 1e-6, `max |p2 - p1| ${st.outputs.probabilities.max_abs_diff} ~ offline ${ref.maxProbDiff}`)
    t.equal(st.decision.evidence.agreement, offlineAgreement)
    t.equal(st.decision.evidence.compared, 89)
    if (which === 'good') t.ok(offlineAgreement >= 0.9, `good retrain agrees on ${offlineAgreement}`)
    else t.ok(offlineAgreement < 0.9, `shuffled-label model agrees on ${offlineAgreement}`)

    const text = await metricsText(s.metricsUrl)
    const counter = (result: string): number => Number(new RegExp(`onnx_sidecar_rollout_comparisons_total\\{model="iris",live_version="1",candidate_version="2",result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? 0)
    t.equal(counter('agree'), st.agreed, 'Prometheus counts the same comparisons')
    t.equal(counter('agree') + counter('disagree') + counter('error'), 89)
    const decided = which === 'good' ? 'promotions' : 'rollbacks'
    t.match(text, new RegExp(`onnx_sidecar_rollout_${decided}_total\\{model="iris",version="2"\\} 1`))
    const log = s.logs.find(l => String(l.msg).startsWith(which === 'good' ? 'rollout: candidate promoted' : 'rollout: candidate rolled back'))
    t.match(log, { model: 'iris', version: 2, evidence: { compared: 89, agreement: offlineAgreement } }, 'the decision is logged with its evidence')

    // After the decision: the promoted candidate answers; a rolled-back one gets nothing more.
    const after = await s.post('/v2/models/iris/infer', irisRequest(rows[0] as number[]))
    t.equal(after.body.model_version, which === 'good' ? '2' : '1')
    await new Promise(resolve => setTimeout(resolve, 50))
    t.equal((await s.get('/v2/models/iris/rollout')).body.compared, 89, 'no more comparisons once decided')
  })
}
