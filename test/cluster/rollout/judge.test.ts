import t from 'tap'
import { evidenceOf, pool, type Evidence } from '../../../cluster/rollout/evidence.js'
import { effective, histogramQuantile, judge, type Thresholds } from '../../../cluster/rollout/judge.js'
import { parsePromText } from '../../../cluster/rollout/prom-text.js'
import { RowTally } from '../../../sidecar/rollout/evidence.js'
import { GOOD, HALVED, podMetrics, TOO_LITTLE } from '../../fixtures/cluster/rollout-fixtures.js'

const rule: Thresholds = { minRequests: 100, maxRequests: 1600, minAgreement: 0.98, confidence: 0.95, maxErrorRateDelta: 0, minErrors: 5, maxLatencyRatio: 1.5, latencySlackMs: 2, rollbackBelow: 0.98, maxCalibrationDrift: 0.1 }

const one = (text: string): Evidence => {
  const [e] = evidenceOf(parsePromText(text), 'ads')
  if (e === undefined) throw new Error('no evidence')
  return e
}
const pooled = (texts: string[]): Evidence => pool(texts.map(one), 'ads', '1', '2')

t.test('the exposition format: labels with escapes, +Inf, comments; a broken line names its number', async t => {
  const s = parsePromText('# HELP x y\nx_total{a="q\\"uote",b="x,y"} 3\nh_bucket{le="+Inf"} 7 1700000000\n\nplain 1e3\n')
  t.same(s, [{ name: 'x_total', labels: { a: 'q"uote', b: 'x,y' }, value: 3 }, { name: 'h_bucket', labels: { le: '+Inf' }, value: 7 }, { name: 'plain', labels: {}, value: 1000 }])
  t.throws(() => parsePromText('ok 1\nbad{a=1} 2\n'), /line 2: malformed labels/)
  t.throws(() => parsePromText('x abc\n'), /line 1: 'abc' is not a number/)
})

t.test('pooling adds every sum, and the pooled effective rows are what one tally of all requests gives', async t => {
  const parts = [podMetrics({ requests: 30, rows: 8, disagreeing: 5 }), podMetrics({ requests: 20, rows: 4, disagreeing: 20 }), podMetrics({ requests: 50, rows: 16 })]
  const p = pooled(parts)
  t.equal(p.sums.requests, 100)
  t.equal(p.sums.rows, 30 * 8 + 20 * 4 + 50 * 16)
  t.equal(p.sums.agreeing, p.sums.rows - 25)
  const tally = new RowTally()
  for (const [n, m, bad] of [[30, 8, 5], [20, 4, 20], [50, 16, 0]] as const) {
    for (let i = 0; i < n; i++) tally.add({ rows: m, agree: m - (i < bad ? 1 : 0) })
  }
  t.ok(Math.abs(effective(p.sums) - tally.effective) < 1e-9, `pooled ${effective(p.sums)} = one tally ${tally.effective}`)
  t.equal(p.latency.live.count, 100)
  t.equal(p.answers.candidate.ok, 100)
})

t.test('a good candidate: no pod alone decides, the pool promotes', async t => {
  t.equal(judge(one(GOOD[0] as string), rule).verdict.action, undefined, 'one pod: 40 requests, before the first decision point')
  const j = judge(pooled(GOOD), rule)
  t.equal(j.requests, 120)
  t.equal(j.look, 0)
  t.equal(j.verdict.action, 'promote', j.verdict.why)
  t.ok(j.verdict.lower >= 0.98)
  t.ok(j.p99 !== undefined && j.p99.candidate < 1, 'p99 from the latency histograms (ms)')
})

t.test('halved probabilities: every top-1 agrees, the calibration rolls it back', async t => {
  const j = judge(pooled(HALVED), rule)
  t.equal(j.agreement, 1)
  t.equal(j.verdict.action, 'rollback')
  t.match(j.verdict.why, /calibration.*class 1 is 0.5/)
})

t.test('too little evidence: keep observing', async t => {
  const j = judge(pooled(TOO_LITTLE), rule)
  t.equal(j.verdict.action, undefined)
  t.equal(j.look, -1)
  t.match(j.verdict.why, /30 of min_requests 100/)
})

t.test('a candidate that errs is rolled back by the error test before min_requests comparisons', async t => {
  const j = judge(pooled([podMetrics({ requests: 40, candidateErrors: 0 }), podMetrics({ requests: 40, candidateErrors: 20 }), podMetrics({ requests: 40, candidateErrors: 20 })].map(x => x.replace(/stat="requests"} 40/g, 'stat="requests"} 20'))), rule)
  t.equal(j.requests, 60)
  t.equal(j.verdict.action, 'rollback')
  t.match(j.verdict.why, /candidate error rate/)
})

t.test('a slow candidate is rolled back by the latency gate', async t => {
  const j = judge(pooled(GOOD.map((_, i) => podMetrics({ requests: 40, candidateSeconds: i === 0 ? 0.04 : 0.0008 }))), rule)
  t.equal(j.verdict.action, 'rollback')
  t.match(j.verdict.why, /latency/)
})

t.test('histogram quantiles interpolate within the bucket', async t => {
  t.equal(histogramQuantile({ bounds: [0.001, 0.002, Infinity], counts: [50, 100, 100], count: 100 }, 0.99), 1.98)
  t.ok(Number.isNaN(histogramQuantile({ bounds: [], counts: [], count: 0 }, 0.99)))
})

t.test('the exposition format: special values, escaped newlines, and lines that are no sample', async t => {
  t.same(parsePromText('a +Inf\nb -Inf\nc{l="x\\ny"} NaN\n').map(s => [s.name, s.labels, s.value]), [['a', {}, Infinity], ['b', {}, -Infinity], ['c', { l: 'x\ny' }, NaN]])
  t.throws(() => parsePromText('{a="1"} 2\n'), /line 1: no metric name/)
  t.throws(() => parsePromText('x{a="1" b="2"} 3\n'), /line 1: malformed labels/)
  t.throws(() => parsePromText('x{a="1"}\n'), /line 1: '' is not a number/)
})

t.test('samples that are not this rollout\'s evidence are ignored, whatever else the pod exports', async t => {
  const base = one(GOOD[0] as string)
  const v = 'model="ads",live_version="1",candidate_version="2"'
  const noise = [
    `onnx_sidecar_rollout_evidence_total{${v},stat="made_up"} 5`,
    `onnx_sidecar_rollout_answers_total{${v},arm="candidate",result="timeout"} 5`,
    `onnx_sidecar_rollout_probability_sum_total{${v},arm="live",class="-1"} 5`,
    `onnx_sidecar_rollout_probability_sum_total{${v},arm="live",class="x"} 5`,
    `onnx_sidecar_rollout_latency_seconds_bucket{${v},arm="live",le="soon"} 5`,
    `onnx_sidecar_rollout_latency_seconds_sum{${v},arm="live"} 5`,
    `onnx_sidecar_rollout_answers_total{${v},arm="third",result="ok"} 5`,
    'onnx_sidecar_rollout_evidence_total{model="ads",stat="requests"} 5'
  ].join('\n')
  t.same(one(`${GOOD[0] as string}${noise}\n`), base)
})

t.test('histogram quantiles: the +Inf bucket gives the last finite bound, an empty bucket its lower bound', async t => {
  t.equal(histogramQuantile({ bounds: [0.001, 0.002, Infinity], counts: [10, 10, 100], count: 100 }, 0.99), 2, 'the rank falls in +Inf')
  t.ok(Number.isNaN(histogramQuantile({ bounds: [0.001, 0.002], counts: [0, 0], count: 0 }, 0.5)), 'nothing observed')
  t.equal(histogramQuantile({ bounds: [0.001, 0.002], counts: [50, 100], count: 0 }, 0.5), 1, 'no _count: the last bucket counts')
  t.equal(histogramQuantile({ bounds: [0.001, 0.002], counts: [10, 20], count: 40 }, 0.99), 2, 'past the last bucket')
})
