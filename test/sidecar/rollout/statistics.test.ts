/**
 * The error rates of the promotion rule, measured by seeded simulation (no sidecar): many
 * rollouts fed to RolloutController with a known true agreement, rows within a request
 * correlated (each request is "easy" or "hard"), and the decisions counted. The measured
 * rates are printed (t.comment) and quoted in docs/rollouts.md.
 */
import t from 'tap'
import { parseModelConfig } from '../../../sidecar/models/model-config.js'
import { RolloutController } from '../../../sidecar/rollout/controller.js'
import { compareOutputs } from '../../../sidecar/rollout/compare.js'
import { compareRows } from '../../../sidecar/rollout/metric-kinds.js'
import { errorsWorse, normalQuantile, wilson } from '../../../sidecar/rollout/stats.js'
import { halfToNumber } from '../../../sidecar/core/float16.js'
import type { WireTensor } from '../../../sidecar/runtime/protocol.js'
import { prng } from '../../../sidecar/core/prng.js'


const rule = (yaml: string): NonNullable<ReturnType<typeof parseModelConfig>['rollout']> => parseModelConfig(yaml, 'c.yaml').rollout as NonNullable<ReturnType<typeof parseModelConfig>['rollout']>
const BLOCK = 'rollout: { live: 1, candidate: 2, promotion: { min_requests: 100, min_agreement: 0.98 } }'

/**
 * One rollout: requests of `rows` rows until a decision (or max_requests). Per-row
 * disagreement is 1 - p on average; half the requests are "hard" (twice the disagreement
 * of the mean less the easy share), so rows within a request are correlated.
 */
function rollout (p: number, random: () => number, rows = 8, spread = 0.5): string {
  const c = new RolloutController(rule(BLOCK))
  const q = 1 - p
  for (;;) {
    const hard = random() < 0.5
    const qi = hard ? q * (1 + spread) : q * (1 - spread)
    let agree = 0
    for (let r = 0; r < rows; r++) if (random() >= qi) agree++
    c.compare(agree === rows ? 'agree' : 'disagree', [], { rows, agree })
    c.served('candidate', false)
    c.served('live', false)
    const d = c.evaluate()
    if (d !== undefined) return d.action
  }
}

function rates (p: number, n: number, seed: number, rows = 8, spread = 0.5): Record<string, number> {
  const random = prng(seed)
  const out: Record<string, number> = { promote: 0, rollback: 0, inconclusive: 0 }
  for (let i = 0; i < n; i++) { const a = rollout(p, random, rows, spread); out[a] = (out[a] ?? 0) + 1 }
  for (const k of Object.keys(out)) out[k] = Number(((out[k] as number) / n).toFixed(4))
  return out
}

t.test('the bounds: z and Wilson', async t => {
  t.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-5)
  t.ok(Math.abs(normalQuantile(0.05) + 1.644854) < 1e-5)
  const w = wilson(88, 89, 1.959964)
  t.ok(Math.abs(w.lower - 0.9391) < 1e-3 && Math.abs(w.upper - 0.9980) < 1e-3, `88/89: [${w.lower}, ${w.upper}]`)
})

t.test('a candidate exactly at the threshold is promoted at most 1 - confidence of the time', async t => {
  const r = rates(0.98, 2000, 1)
  t.comment(`true agreement 0.98 = min_agreement 0.98, 2,000 rollouts of 8-row requests: promoted ${r.promote}, rolled back ${r.rollback}, inconclusive ${r.inconclusive}`)
  t.ok((r.promote as number) <= 0.05, `false promotions ${r.promote} <= 0.05`)
  t.ok((r.rollback as number) <= 0.05, `false rollbacks ${r.rollback} <= 0.05`)
})

t.test('64-row requests whose rows are strongly correlated: the requests-as-clusters correction keeps the rate', async t => {
  const r = rates(0.98, 600, 8, 64, 0.95)
  t.comment(`true agreement 0.98, 600 rollouts of 64-row requests (hard ones disagree 39x as often as easy ones): promoted ${r.promote}, rolled back ${r.rollback}, inconclusive ${r.inconclusive}`)
  t.ok((r.promote as number) <= 0.05, `false promotions ${r.promote} <= 0.05`)
  t.ok((r.rollback as number) <= 0.05, `false rollbacks ${r.rollback} <= 0.05`)
})

t.test('just below the threshold (0.979 against 0.98): hardly ever promoted', async t => {
  const r = rates(0.979, 2000, 2)
  t.comment(`true agreement 0.979: promoted ${r.promote}, rolled back ${r.rollback}, inconclusive ${r.inconclusive}`)
  t.ok((r.promote as number) <= 0.05)
})

t.test('a candidate clearly above the threshold is promoted; one clearly below is rolled back', async t => {
  const good = rates(0.995, 1000, 3)
  t.comment(`true agreement 0.995: promoted ${good.promote}, rolled back ${good.rollback}, inconclusive ${good.inconclusive}`)
  t.ok((good.promote as number) >= 0.95)
  const bad = rates(0.96, 1000, 4)
  t.comment(`true agreement 0.96: promoted ${bad.promote}, rolled back ${bad.rollback}, inconclusive ${bad.inconclusive}`)
  t.ok((bad.rollback as number) >= 0.95)
})

t.test('errors: the same error rate on both arms is rarely blamed on the candidate; one 503 never', async t => {
  const random = prng(5)
  let blamed = 0
  for (let i = 0; i < 2000; i++) {
    let ce = 0
    let le = 0
    for (let j = 0; j < 1000; j++) { if (random() < 0.01) ce++; if (random() < 0.01) le++ }
    if (errorsWorse(ce, 1000, le, 1000, 0, 5, normalQuantile(0.975))) blamed++
  }
  t.comment(`1 % errors on both arms, 1,000 answers each, 2,000 trials: rolled back for errors ${blamed / 2000}`)
  t.ok(blamed / 2000 <= 0.05)
  t.equal(errorsWorse(1, 100, 0, 100, 0, 5, 1.96), false, 'one 503 and none on live')
  t.equal(errorsWorse(20, 1000, 2, 1000, 0, 5, 1.96), true, '2 % against 0.2 %')
})

const f32 = (dims: number[], v: number[]): WireTensor => ({ type: 'float32', dims, data: Float32Array.from(v) })

t.test('probabilities: a candidate with halved click probabilities agrees on top-1 and is rolled back by calibration', async t => {
  const c = new RolloutController(rule('rollout: { live: 1, candidate: 2, promotion: { min_requests: 100, min_agreement: 0.95 } }'))
  const random = prng(6)
  let top1Agree = 0
  let top1Rows = 0
  let d
  while (d === undefined) {
    const p = Array.from({ length: 16 }, () => 0.005 + random() * 0.05)
    const live = { probabilities: f32([16, 2], p.flatMap(x => [1 - x, x])) }
    const cand = { probabilities: f32([16, 2], p.flatMap(x => [1 - x / 2, x / 2])) }
    const cmp = compareOutputs(live, cand, { hasLabels: false, compareOutput: undefined, tolerance: 1e-4, half: halfToNumber })
    t.equal(cmp.evidence.metric, 'probabilities', '[N,2] in [0, 1]: probabilities by default')
    const top = cmp.outputs[0]?.top1
    top1Agree += top?.agree ?? 0
    top1Rows += top?.rows ?? 0
    c.compare(cmp.agree ? 'agree' : 'disagree', cmp.outputs, cmp.evidence)
    d = c.evaluate()
  }
  t.equal(top1Agree, top1Rows, 'top-1 (p > 0.5) agrees on every row')
  t.equal(d.action, 'rollback')
  t.match(d.evidence.rule, /calibration: mean candidate \/ mean live probability of class 1 is 0\.5/)
  t.ok(Math.abs((d.evidence.calibration?.ratio ?? 0) - 0.5) < 1e-3)
})

t.test('latency: a 10x slower candidate is not promoted; an equally fast one is', async t => {
  const run = (slowdown: number): string => {
    const c = new RolloutController(rule('rollout: { live: 1, candidate: 2, promotion: { min_requests: 100, min_agreement: 0.9 } }'))
    const random = prng(7)
    for (;;) {
      const live = 3 + random() * 2
      c.compare('agree', [], { rows: 4, agree: 4 }, { liveMs: live, candidateMs: (3 + random() * 2) * slowdown })
      const d = c.evaluate()
      if (d !== undefined) return `${d.action}: ${d.evidence.rule}`
    }
  }
  t.match(run(10), /^rollback: latency: candidate p99 \d/)
  t.match(run(1), /^promote/)
})

t.test('ranking: top-k overlap per request; scores: relative difference per row', async t => {
  const s = { maxShift: 0.1, rtol: 0.1, atol: 1e-4, k: 3 }
  const live = [0.9, 0.8, 0.7, 0.1, 0.05]
  t.same(compareRows('ranking', { type: 'float32', dims: [5] }, live, [0.9, 0.8, 0.7, 0.1, 0.05].map(x => x * 2), s), { metric: 'ranking', rows: 3, agree: 3 }, 'a rescaled score ranks the same')
  t.same(compareRows('ranking', { type: 'float32', dims: [5] }, live, [0.7, 0.8, 0.9, 0.1, 0.05], s), { metric: 'ranking', rows: 3, agree: 3 }, 'the same top 3 in another order')
  t.same(compareRows('ranking', { type: 'float32', dims: [5, 1] }, live, [0.1, 0.8, 0.7, 0.9, 0.95], s), { metric: 'ranking', rows: 3, agree: 1 }, 'two of the top 3 replaced')
  t.same(compareRows('ranking', { type: 'float32', dims: [1] }, [1], [2], s), { metric: 'ranking', rows: 0, agree: 0 }, 'one row ranks nothing')
  t.same(compareRows('scores', { type: 'float32', dims: [3] }, [10, 100, 0], [10.5, 150, 0.00005], s), { metric: 'scores', rows: 3, agree: 2 })
})
