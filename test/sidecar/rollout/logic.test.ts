import t from 'tap'
import { compareOutputs, top1 } from '../../../sidecar/rollout/compare.js'
import { parseModelConfig } from '../../../sidecar/models/model-config.js'
import { RolloutController } from '../../../sidecar/rollout/controller.js'
import { shadowGate, type GateView } from '../../../sidecar/rollout/gate.js'
import { bucketOf, fnv1a, inCanary } from '../../../sidecar/rollout/sticky.js'
import { halfToNumber } from '../../../sidecar/core/float16.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'

const f32 = (dims: number[], v: number[]): WireTensor => ({ type: 'float32', dims, data: Float32Array.from(v) })
const i64 = (v: number[]): WireTensor => ({ type: 'int64', dims: [v.length], data: BigInt64Array.from(v.map(BigInt)) })
const opts = { hasLabels: true, compareOutput: undefined, tolerance: 1e-4, half: halfToNumber }

t.test('top-1: argmax of a float class dimension; an integer class per row only with labels', async t => {
  t.same([...top1(f32([2, 3], []), [0.1, 0.7, 0.2, 0.5, 0.2, 0.3], false) as Int32Array], [1, 0])
  t.same([...top1(i64([2, 0]), [2, 0], true) as Int32Array], [2, 0])
  t.equal(top1(i64([2, 0]), [2, 0], false), undefined, 'no labels file: an integer is not a class')
  t.equal(top1(f32([2, 1], []), [0.4, 0.5], true), undefined, 'one score per row: a regression')
})

t.test('compare: top-1 agreement decides, abs diffs for every output', async t => {
  const live = { label: i64([1, 2]), probabilities: f32([2, 3], [0.1, 0.8, 0.1, 0.2, 0.2, 0.6]) }
  const same = compareOutputs(live, { label: i64([1, 2]), probabilities: f32([2, 3], [0.1, 0.7, 0.2, 0.2, 0.2, 0.6]) }, opts)
  t.equal(same.agree, true)
  t.equal(same.decidedBy, 'label', 'the first output with a top-1')
  const p = same.outputs.find(o => o.name === 'probabilities')
  t.ok(Math.abs((p?.maxAbsDiff ?? 0) - 0.1) < 1e-6, 'max abs diff')
  t.ok(Math.abs((p?.meanAbsDiff ?? 0) - 0.2 / 6) < 1e-6, 'mean abs diff')
  t.same(p?.top1, { agree: 2, rows: 2 })
  const oneRowOff = compareOutputs(live, { label: i64([1, 0]), probabilities: f32([2, 3], [0.1, 0.8, 0.1, 0.7, 0.2, 0.1]) }, opts)
  t.equal(oneRowOff.agree, false, 'a request agrees only when every row does')
  t.same(oneRowOff.outputs.find(o => o.name === 'label')?.top1, { agree: 1, rows: 2 })
  const chosen = compareOutputs(live, { label: i64([1, 0]), probabilities: f32([2, 3], [0.1, 0.8, 0.1, 0.2, 0.2, 0.6]) }, { ...opts, compareOutput: 'probabilities' })
  t.equal(chosen.agree, true, 'compare_output picks the deciding output')
  t.equal(chosen.decidedBy, 'probabilities')
})

t.test('compare: a binary classifier decides by its probability output, not its label (a halved click probability keeps every label)', async t => {
  // The shop's ads model: label [N] (with labels.txt) first, then probabilities [N,2].
  const live = { label: i64([0, 0, 1]), probabilities: f32([3, 2], [0.83, 0.17, 0.9, 0.1, 0.3, 0.7]) }
  const halved = { label: i64([0, 0, 1]), probabilities: f32([3, 2], [0.915, 0.085, 0.95, 0.05, 0.65, 0.35]) }
  const c = compareOutputs(live, halved, opts)
  t.equal(c.decidedBy, 'probabilities', 'the probability output decides although label comes first')
  t.equal(c.outputs.find(o => o.name === 'label')?.top1?.agree, 3, 'by label every row would agree')
  t.equal(c.evidence.metric, 'probabilities')
  t.same([c.evidence.rows, c.evidence.agree], [3, 2], 'the third row moved by 0.35 > max_shift 0.1')
  t.ok(Math.abs((c.evidence.sumCandidate?.[1] as number) / (c.evidence.sumLive?.[1] as number) - 0.5) < 1e-6, 'calibration evidence: mean p(click) halved')
  // Logits ([N,2] outside [0, 1]) are not probabilities: the label decides as before.
  const logits = compareOutputs({ label: i64([0, 1]), scores: f32([2, 2], [2, -1, -3, 4]) }, { label: i64([0, 1]), scores: f32([2, 2], [1, -1, -2, 4]) }, opts)
  t.equal(logits.decidedBy, 'label')
  t.equal(logits.evidence.metric, 'classes')
  // compare_output still wins.
  t.equal(compareOutputs(live, halved, { ...opts, compareOutput: 'label' }).decidedBy, 'label')
})

t.test('compare: no top-1 output, scores: |c - l| <= tolerance + rtol |l| per row (rtol 0.1 by default)', async t => {
  const live = { y: f32([2, 1], [1, 2]) }
  t.equal(compareOutputs(live, { y: f32([2, 1], [1.00001, 2]) }, opts).agree, true)
  t.same(compareOutputs(live, { y: f32([2, 1], [1.05, 2.1]) }, opts).evidence, { metric: 'scores', rows: 2, agree: 2 }, 'a retrain moves scores a little: it agrees')
  const off = compareOutputs(live, { y: f32([2, 1], [1.5, 2]) }, opts)
  t.equal(off.agree, false)
  t.same(off.evidence, { metric: 'scores', rows: 2, agree: 1 }, 'counted per row')
  t.equal(compareOutputs({ s: { type: 'string', dims: [1], data: ['a'] } }, { s: { type: 'string', dims: [1], data: ['b'] } }, opts).agree, false, 'strings differ: max diff Infinity')
})

t.test('sticky hash: stable, and the share is about right over many keys', async t => {
  t.equal(fnv1a(''), 0x811c9dc5)
  t.equal(fnv1a('a'), 0xe40c292c, 'FNV-1a test vector')
  t.equal(bucketOf('m:2', 'user-42'), bucketOf('m:2', 'user-42'))
  t.not(bucketOf('m:2', 'user-42'), bucketOf('m:3', 'user-42'), 'another rollout draws another cohort')
  for (const share of [0.01, 0.1, 0.5]) {
    let n = 0
    for (let i = 0; i < 20_000; i++) if (inCanary('recommender:2', `user-${i}`, share)) n++
    t.ok(Math.abs(n / 20_000 - share) < 0.01, `share ${share}: ${n / 20_000}`)
  }
  t.equal(inCanary('m', 'k', 1), true)
  t.equal(inCanary('m', 'k', 0), false)
})

t.test('shadow gate: runs only on a worker nobody waits for', async t => {
  const free: GateView = { shadowInProgress: false, servingQueued: 0, servingBusy: undefined, runs: 'candidate', runIdle: true, idleWorkers: 2, servingInline: false }
  t.equal(shadowGate(free), undefined)
  t.equal(shadowGate({ ...free, shadowInProgress: true }), 'in_progress')
  t.equal(shadowGate({ ...free, servingQueued: 1 }), 'queue')
  t.equal(shadowGate({ ...free, servingQueued: undefined }), undefined, 'the queue is checked at sampling time only')
  t.equal(shadowGate({ ...free, servingQueued: undefined, servingBusy: true }), 'busy', 'at start: live work queued or running drops the run')
  t.equal(shadowGate({ ...free, servingQueued: undefined, servingBusy: false }), undefined)
  t.equal(shadowGate({ ...free, servingQueued: 2, servingBusy: true }), 'queue', 'queue is checked first')
  t.equal(shadowGate({ ...free, servingBusy: true, shadowInProgress: true }), 'in_progress', 'in_progress is checked before busy')
  t.equal(shadowGate({ ...free, runIdle: false }), 'candidate', 'shadow: the candidate is busy')
  t.equal(shadowGate({ ...free, runs: 'live', runIdle: false }), 'live', 'canary: live, the version to run, is busy')
  t.equal(shadowGate({ ...free, idleWorkers: 1 }), 'worker', 'a serving version on the workers keeps one idle worker for itself')
  t.equal(shadowGate({ ...free, idleWorkers: 1, servingInline: true }), undefined, 'inline serving versions need no worker')
  t.equal(shadowGate({ ...free, idleWorkers: 0, servingInline: true }), 'worker')
})

const rollout = (yaml: string): NonNullable<ReturnType<typeof parseModelConfig>['rollout']> => parseModelConfig(yaml, 'c.yaml').rollout as NonNullable<ReturnType<typeof parseModelConfig>['rollout']>

t.test('controller: promotes when the lower Wilson bound clears min_agreement, at the first decision point', async t => {
  const c = new RolloutController(rollout('rollout: { live: 1, candidate: 2, promotion: { min_requests: 10, min_agreement: 0.8 } }'))
  for (let i = 0; i < 9; i++) { c.compare('agree', [], { rows: 8, agree: 8 }); c.served('candidate', false) }
  t.equal(c.evaluate(), undefined, 'not before min_requests')
  t.equal(c.liveVersion, 1)
  c.compare('agree', [], { rows: 8, agree: 7 })
  const d = c.evaluate(new Date(0))
  t.equal(d?.action, 'promote')
  t.match(d?.evidence, { compared: 10, rows: 80, rows_agreed: 79, confidence: 0.975, live_error_rate: 0, candidate_error_rate: 0, latency_p99_ms: null, calibration: null })
  t.ok((d?.evidence.lower ?? 0) >= 0.8 && (d?.evidence.lower ?? 1) < 79 / 80, `lower bound ${d?.evidence.lower}`)
  t.match(d?.evidence.rule, /^agreement 0\.9875, bounds \[0\.\d+, 0\.\d+\]: lower bound >= min_agreement 0\.8 over 80 rows \(.* effective\) of 10 requests at confidence 0\.975/)
  t.equal(c.phase, 'promoted')
  t.equal(c.liveVersion, 2, 'the candidate answers now')
  t.equal(c.evaluate(), undefined, 'decides once')
})

t.test('controller: agreement is counted per row, not per request', async t => {
  // 99.5 % of rows agree on 64-row requests: per request that read ~73 %.
  const c = new RolloutController(rollout('rollout: { live: 1, candidate: 2, promotion: { min_requests: 200, min_agreement: 0.98 } }'))
  for (let i = 0; i < 200; i++) c.compare(i % 3 === 0 ? 'disagree' : 'agree', [], { rows: 64, agree: i % 3 === 0 ? 63 : 64 })
  t.ok(Math.abs((c.agreement ?? 0) - (1 - 67 / 12800)) < 1e-12)
  t.equal(c.evaluate()?.action, 'promote')
})

t.test('controller: rolls back when the upper bound is below the threshold, observes in between', async t => {
  const c = new RolloutController(rollout('rollout: { live: 1, candidate: 2, promotion: { min_requests: 4, min_agreement: 0.9 }, rollback: { below_agreement: 0.5 } }'))
  for (const r of ['agree', 'agree', 'agree', 'disagree'] as const) c.compare(r)
  t.equal(c.evaluate(), undefined, '3 of 4: neither bound decides, keep observing')
  for (const r of ['disagree', 'disagree', 'error', 'error'] as const) c.compare(r)
  t.equal(c.evaluate(), undefined, '3 of 8: upper bound above 0.5 still')
  for (let i = 0; i < 8; i++) c.compare('disagree')
  const d = c.evaluate()
  t.equal(d?.action, 'rollback')
  t.match(d?.evidence.rule, /agreement 0\.1875, bounds .*: upper bound < 0\.5 over 16 rows/)
  t.equal(c.liveVersion, 1)
  t.equal(c.phase, 'rolled_back')
})

t.test('controller: inconclusive at max_requests; live keeps answering', async t => {
  const c = new RolloutController(rollout('rollout: { live: 1, candidate: 2, promotion: { min_requests: 100, max_requests: 400, min_agreement: 0.98 } }'))
  for (let i = 0; i < 400; i++) {
    c.compare(i % 50 === 0 ? 'disagree' : 'agree')
    const d = c.evaluate()
    if (d !== undefined) t.equal(i, 399, 'decided only at max_requests')
  }
  t.equal(c.phase, 'inconclusive')
  t.equal(c.liveVersion, 1)
  t.match(c.decision?.evidence.rule, /max_requests 400 reached/)
})

t.test('controller: a canary that errs significantly more than live rolls back even when it agrees', async t => {
  const c = new RolloutController(rollout('rollout: { live: 1, candidate: 2, mode: canary, share: 0.5, promotion: { min_requests: 2, min_agreement: 0.5, max_error_rate_delta: 0.01 } }'))
  for (let i = 0; i < 100; i++) c.served('live', false)
  for (let i = 0; i < 100; i++) c.served('candidate', i < 20)
  c.compare('agree')
  c.compare('agree')
  const d = c.evaluate()
  t.equal(d?.action, 'rollback')
  t.match(d?.evidence.rule, /candidate error rate 0\.2 > live 0 \+ 0\.01 \(20 errors in 100/)
})

t.test('controller: a canary whose answers all fail compares nothing and is still rolled back, at its own decision points', async t => {
  const c = new RolloutController(rollout('rollout: { live: 1, candidate: 2, mode: canary, share: 0.5, promotion: { min_requests: 20, min_agreement: 0.9 } }'))
  let d
  for (let i = 0; i < 20 && d === undefined; i++) {
    c.served('live', false)
    c.served('candidate', true)
    d = c.evaluate()
  }
  t.equal(c.compared, 0)
  t.equal(d?.action, 'rollback', 'at 20 candidate answers')
  t.match(d?.evidence.rule, /candidate error rate 1 > live 0 \+ 0 \(20 errors in 20/)
})

t.test('controller: one 503 on the candidate and none on live does not roll back', async t => {
  const c = new RolloutController(rollout('rollout: { live: 1, candidate: 2, mode: canary, share: 0.5, promotion: { min_requests: 30, min_agreement: 0.8 } }'))
  for (let i = 0; i < 30; i++) c.served('live', false)
  for (let i = 0; i < 30; i++) c.served('candidate', i === 0)
  for (let i = 0; i < 30; i++) c.compare('agree')
  t.equal(c.evaluate()?.action, 'promote', 'fewer than min_errors (5): the error test cannot trip')
})

t.test('controller: without a promotion rule it only observes', async t => {
  const c = new RolloutController(rollout('rollout: { live: 1, candidate: 2 }'))
  for (let i = 0; i < 1000; i++) c.compare('disagree')
  t.equal(c.evaluate(), undefined)
  t.equal(c.phase, 'observing')
})
