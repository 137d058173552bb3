import t from 'tap'
import { parseModelConfig, selectVersions } from '../../../sidecar/models/model-config.js'
import { ModelLoadError } from '../../../sidecar/core/errors.js'

const FILE = '/models/recommender/config.yaml'

t.test('no rollout key: rollout off', async t => {
  t.equal(parseModelConfig('max_batch_size: 8', FILE).rollout, undefined)
})

t.test('a shadow rollout with defaults', async t => {
  const r = parseModelConfig('rollout: { live: 1, candidate: 2 }', FILE).rollout
  t.same(r, { live: 1, candidate: 2, mode: 'shadow', sample: 1, share: 0, stickyHeader: undefined, compareOutput: undefined, tolerance: 1e-4, promotion: undefined })
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
  compare_output: probabilities
  tolerance: 0.01
  promotion: { min_requests: 500, min_agreement: 0.97, max_error_rate_delta: 0.001 }
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
    promotion: { minRequests: 500, minAgreement: 0.97, maxErrorRateDelta: 0.001, rollbackBelow: 0.9 }
  })
  const p = parseModelConfig('rollout: { live: 1, candidate: 2, promotion: { min_requests: 10, min_agreement: 0.9 } }', FILE).rollout
  t.same(p?.promotion, { minRequests: 10, minAgreement: 0.9, maxErrorRateDelta: 0, rollbackBelow: 0.9 }, 'rollback threshold defaults to min_agreement')
})

t.test('errors name the file and the key', async t => {
  const cases: Array<[string, RegExp]> = [
    ['rollout: { candidate: 2 }', /key 'rollout\.live' is required/],
    ['rollout: { live: 1 }', /key 'rollout\.candidate' is required/],
    ['rollout: { live: 0, candidate: 2 }', /key 'rollout\.live' must be >= 1/],
    ['rollout: { live: 1, candidate: 1 }', /key 'rollout\.candidate' must differ from 'rollout\.live' \(both are 1\)/],
    ['rollout: { live: 1, candidate: 2, mode: blue }', /key 'rollout\.mode' must be one of: shadow, canary/],
    ['rollout: { live: 1, candidate: 2, sampel: 0.5 }', /key 'rollout\.sampel' is not a known key/],
    ['rollout: { live: 1, candidate: 2, sample: 1.5 }', /key 'rollout\.sample' must be <= 1/],
    ['rollout: { live: 1, candidate: 2, mode: canary }', /key 'rollout\.share' is required when 'rollout\.mode' is canary/],
    ['rollout: { live: 1, candidate: 2, mode: canary, share: 0 }', /key 'rollout\.share' must be greater than 0/],
    ['rollout: { live: 1, candidate: 2, share: 0.1 }', /key 'rollout\.share' applies to mode canary only/],
    ['rollout: { live: 1, candidate: 2, sticky_header: x-user }', /key 'rollout\.sticky_header' applies to mode canary only/],
    ['rollout: { live: 1, candidate: 2, mode: canary, share: 0.1, sticky_header: "x user" }', /key 'rollout\.sticky_header' must match pattern/],
    ['rollout: { live: 1, candidate: 2, promotion: { min_agreement: 0.9 } }', /key 'rollout\.promotion\.min_requests' is required/],
    ['rollout: { live: 1, candidate: 2, promotion: { min_requests: 0, min_agreement: 0.9 } }', /key 'rollout\.promotion\.min_requests' must be >= 1/],
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
