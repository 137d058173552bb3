import t from 'tap'
import { decide, lookAt, type DecisionInput } from '../../../sidecar/rollout/decision.js'

const rule = { minRequests: 100, maxRequests: 1000, minAgreement: 0.9, confidence: 0.95, maxErrorRateDelta: 0, minErrors: 5, maxLatencyRatio: 1.5, latencySlackMs: 2, rollbackBelow: 0.9 }

t.test('decision points: min_requests x 1, 2, 4, ... and the last at max_requests', async t => {
  t.same([99, 100, 199, 200, 400, 799, 800, 999, 1000, 5000].map(n => lookAt(rule, n)), [-1, 0, 0, 1, 2, 2, 3, 3, 4, 4])
  t.equal(lookAt({ minRequests: 100, maxRequests: 100 }, 100), 0)
  t.equal(lookAt({ minRequests: 100, maxRequests: 1600 }, 1600), 4)
})

const input = (over: Partial<DecisionInput>): DecisionInput => ({
  rule, maxCalibrationDrift: 0.1, look: 0, compared: 100, rows: 800, agreement: 0.99, effective: 800,
  arms: { live: { requests: 100, errors: 0 }, candidate: { requests: 100, errors: 0 } }, p99: undefined, calibration: undefined, ...over
})

t.test('the rule at one decision point', async t => {
  const good = decide(input({}))
  t.equal(good.action, 'promote')
  t.ok(good.lower >= 0.9, good.why)
  t.equal(good.confidence, 0.975, 'look 0 spends alpha / 2')
  t.equal(decide(input({ look: 1 })).confidence, 0.9875, 'look 1 spends alpha / 4')
  t.equal(decide(input({ agreement: 0.5 })).action, 'rollback')
  t.equal(decide(input({ calibration: { class: 1, ratio: 0.5 } })).action, 'rollback')
  t.match(decide(input({ calibration: { class: 1, ratio: 0.5 } })).why, /calibration.*class 1 is 0.5/)
  t.equal(decide(input({ p99: { live: 1, candidate: 10 } })).action, 'rollback')
  t.equal(decide(input({ arms: { live: { requests: 100, errors: 0 }, candidate: { requests: 100, errors: 20 } } })).action, 'rollback')
  const near = input({ agreement: 0.91, effective: 100 })
  t.equal(decide(near).action, undefined, 'neither bound decides: keep observing')
  t.equal(decide({ ...near, compared: 1000 }).action, 'inconclusive')
})
