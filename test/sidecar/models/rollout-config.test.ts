import t from 'tap'
import { parseModelConfig, selectVersions } from '../../../sidecar/models/model-config.js'
import { ModelLoadError } from '../../../sidecar/core/errors.js'

const FILE = '/models/recommender/config.yaml'

t.test('no rollout key: rollout off', async t => {
  t.equal(parseModelConfig('max_batch_size: 8', FILE).rollout, undefined)
})

t.test('a shadow rollout with defaults', async t => {
  const r = parseModelConfig('rollout: { live: 1, candidate: 2 }', FILE).rollout
  t.same(r, { live: 1, candidate: 2, mode: 'shadow', sample: 1, share: 0, stickyHeader: undefined, compareOutput: undefined, tolerance: 1e-4, compare: { metric: undefined, maxShift: 0.1, maxCalibrationDrift: 0.1, rtol: 0.1, k: 10 }, promotion: undefined, decide: 'pod' })
})

t.test('every key is read', async t => {
  const r = parseModelConfig(`
rollout:
  live: 3
  candidate: 4
  mode: canary
  share: 0.25
  sample: 0.5
  sticky_header: X-User-Id
  compare: { output: probabilities, metric: probabilities, max_shift: 0.05, max_calibration_drift: 0.2, rtol: 0.3, k: 5 }
  tolerance: 0.01
  promotion: { min_requests: 500, max_requests: 4000, min_agreement: 0.97, confidence: 0.99, max_error_rate_delta: 0.001, min_errors: 3, max_latency_ratio: 2, latency_slack_ms: 0.5 }
  rollback: { below_agreement: 0.9 }
`, FILE).rollout
  t.same(r, {
    live: 3,
    candidate: 4,
    mode: 'canary',
    sample: 0.5,
    share: 0.25,
    stickyHeader: 'x-user-id',
    compareOutput: 'probabilities',
    tolerance: 0.01,
    compare: { metric: 'probabilities', maxShift: 0.05, maxCalibrationDrift: 0.2, rtol: 0.3, k: 5 },
    promotion: { minRequests: 500, maxRequests: 4000, minAgreement: 0.97, confidence: 0.99, maxErrorRateDelta: 0.001, minErrors: 3, maxLatencyRatio: 2, latencySlackMs: 0.5, rollbackBelow: 0.9 },
    decide: 'pod'
  })
  t.equal(parseModelConfig('rollout: { live: 1, candidate: 2, compare_output: y }', FILE).rollout?.compareOutput, 'y', 'compare_output: the older spelling of compare.output')
  const p = parseModelConfig('rollout: { live: 1, candidate: 2, promotion: { min_agreement: 0.9 } }', FILE).rollout
  t.same(p?.promotion, { minRequests: 100, maxRequests: 1600, minAgreement: 0.9, confidence: 0.95, maxErrorRateDelta: 0, minErrors: 5, maxLatencyRatio: 1.5, latencySlackMs: 2, rollbackBelow: 0.9 }, 'defaults: 100 requests first, 16x that at most, 95 %; rollback threshold min_agreement')
})

t.test('errors name the file and the key', async t => {
  const cases: Array<[string, RegExp]> = [
    ['rollout: { candidate: 2 }', /key 'rollout\.live' is required/],
    ['rollout: { live: 1 }', /key 'rollout\.candidate' is required/],
    ['rollout: { live: 0, candidate: 2 }', /key 'rollout\.live' must be >= 1/],
    ['rollout: { live: 1, candidate: 1 }', /key 'rollout\.candidate' must differ from 'rollout\.live' \(both are 1\)/],
    ['rollout: { live: 1, candidate: 2, mode: blue }', /key 'rollout\.mode' must be one of: shadow, canary/],
    ['rollout: { live: 1, candidate: 2, decide: team }', /key 'rollout\.decide' must be one of: pod, fleet/],
    ['rollout: { live: 1, candidate: 2, sampel: 0.5 }', /key 'rollout\.sampel' is not a known key/],
    ['rollout: { live: 1, candidate: 2, sample: 1.5 }', /key 'rollout\.sample' must be <= 1/],
    ['rollout: { live: 1, candidate: 2, mode: canary }', /key 'rollout\.share' is required when 'rollout\.mode' is canary/],
    ['rollout: { live: 1, candidate: 2, mode: canary, share: 0 }', /key 'rollout\.share' must be greater than 0/],
    ['rollout: { live: 1, candidate: 2, share: 0.1 }', /key 'rollout\.share' applies to mode canary only/],
    ['rollout: { live: 1, candidate: 2, sticky_header: x-user }', /key 'rollout\.sticky_header' applies to mode canary only/],
    ['rollout: { live: 1, candidate: 2, mode: canary, share: 0.1, sticky_header: "x user" }', /key 'rollout\.sticky_header' must match pattern/],
    ['rollout: { live: 1, candidate: 2, promotion: { min_requests: 10 } }', /key 'rollout\.promotion\.min_agreement' is required/],
    ['rollout: { live: 1, candidate: 2, promotion: { min_requests: 1, min_agreement: 0.9 } }', /key 'rollout\.promotion\.min_requests' must be >= 2/],
    ['rollout: { live: 1, candidate: 2, promotion: { min_requests: 100, max_requests: 50, min_agreement: 0.9 } }', /key 'rollout\.promotion\.max_requests' \(50\) must not be below 'rollout\.promotion\.min_requests' \(100\)/],
    ['rollout: { live: 1, candidate: 2, promotion: { min_agreement: 0.9, confidence: 0.3 } }', /key 'rollout\.promotion\.confidence' must be >= 0\.5/],
    ['rollout: { live: 1, candidate: 2, compare: { metric: top1 } }', /key 'rollout\.compare\.metric' must be one of: classes, probabilities, ranking, scores/],
    ['rollout: { live: 1, candidate: 2, compare_output: a, compare: { output: b } }', /key 'rollout\.compare\.output' \('b'\) and 'rollout\.compare_output' \('a'\) differ/],
    ['rollout: { live: 1, candidate: 2, promotion: { min_requests: 10, min_agreement: 1.2 } }', /key 'rollout\.promotion\.min_agreement' must be <= 1/],
    ['rollout: { live: 1, candidate: 2, promotion: { min_requests: 10, min_agreement: 0.9, max_errors: 1 } }', /key 'rollout\.promotion\.max_errors' is not a known key/],
    ['rollout: { live: 1, candidate: 2, rollback: { below_agreement: 0.5 } }', /key 'rollout\.rollback' needs 'rollout\.promotion'/],
    ['rollout: { live: 1, candidate: 2, promotion: { min_requests: 10, min_agreement: 0.9 }, rollback: { below_agreement: 0.95 } }', /key 'rollout\.rollback\.below_agreement' \(0\.95\) must not be above 'rollout\.promotion\.min_agreement' \(0\.9\)/],
    ['rollout: { live: 1, candidate: 2, sample: 0, promotion: { min_requests: 10, min_agreement: 0.9 } }', /key 'rollout\.sample' is 0/],
    ['rollout: { live: 1, candidate: 2, tolerance: -1 }', /key 'rollout\.tolerance' must be >= 0/],
    ['rollout: [1, 2]', /key 'rollout' must be object/]
  ]
  for (const [text, re] of cases) {
    const err = (() => { try { parseModelConfig(text, FILE) } catch (e) { return e } })()
    t.type(err, ModelLoadError, text)
    t.equal((err as ModelLoadError).code, 'OS_ERR_MODEL_CONFIG', `${text}: code`)
    t.match((err as Error).message, /^\/models\/recommender\/config\.yaml: key 'rollout/, `${text}: names the file and key`)
    t.match((err as Error).message, re, `${text}: ${(err as Error).message}`)
  }
})

t.test('the rollout versions are served whatever the version policy says', async t => {
  const rollout = parseModelConfig('rollout: { live: 1, candidate: 3 }', FILE).rollout
  t.same(selectVersions({ latest: 1 }, [1, 2, 3, 4], rollout), [4, 3, 1])
  t.same(selectVersions({ specific: [2] }, [1, 2, 3], rollout), [3, 2, 1])
  t.same(selectVersions({ latest: 1 }, [2, 3], rollout), [3], 'a version that is not on disk is not invented')
  t.same(selectVersions({ latest: 1 }, [1, 2, 3, 4]), [4], 'without a rollout: the policy alone')
})
