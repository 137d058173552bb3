import t from 'tap'
import { DEFAULTS, parseModelConfig, selectVersions } from '../../../sidecar/models/model-config.js'
import { ModelLoadError } from '../../../sidecar/core/errors.js'

const FILE = '/models/m/config.yaml'

t.test('no file or an empty file gives the defaults', async t => {
  for (const text of [undefined, '', '# only a comment\n']) {
    const c = parseModelConfig(text, FILE)
    t.equal(c.maxBatchSize, undefined)
    t.equal(c.maxQueueDelayMicros, DEFAULTS.maxQueueDelayMicros)
    t.equal(c.maxQueueSize, DEFAULTS.maxQueueSize)
    t.same(c.versionPolicy, { latest: 1 })
    t.equal(c.warmup, true)
    t.equal(c.preprocess.size, 0)
  }
})

t.test('every key is read', async t => {
  const c = parseModelConfig(`
max_batch_size: 0
dynamic_batching: { max_queue_delay_microseconds: 250, max_queue_size: 7 }
version_policy: { specific: [1, 3] }
preprocess:
  a: { minmax: { min: [0, 1], max: [2, 3] } }
  b: { zscore: { mean: [1], std: [0.5] } }
warmup: false
`, FILE)
  t.equal(c.maxBatchSize, 0)
  t.equal(c.maxQueueDelayMicros, 250)
  t.equal(c.maxQueueSize, 7)
  t.same(c.versionPolicy, { specific: [1, 3] })
  t.equal(c.warmup, false)
  t.same(c.preprocess.get('a'), { kind: 'minmax', min: [0, 1], max: [2, 3] })
  t.same(c.preprocess.get('b'), { kind: 'zscore', mean: [1], std: [0.5] })
  t.same(parseModelConfig('version_policy: { all: {} }', FILE).versionPolicy, { all: {} })
})

t.test('errors name the file and the key', async t => {
  const cases: Array<[string, RegExp]> = [
    ['max_batch_sise: 8', /key 'max_batch_sise' is not a known key/],
    ['max_batch_size: eight', /key 'max_batch_size' must be integer/],
    ['max_batch_size: -1', /key 'max_batch_size' must be >= 0/],
    ['max_batch_size: 1.5', /key 'max_batch_size' must be integer/],
    ['dynamic_batching: { delay: 1 }', /key 'dynamic_batching\.delay' is not a known key/],
    ['dynamic_batching: { max_queue_size: 0 }', /key 'dynamic_batching\.max_queue_size' must be >= 1/],
    ['version_policy: { latest: 0 }', /key 'version_policy\.latest' must be >= 1/],
    ['version_policy: { latest: 1, all: {} }', /key 'version_policy' must have exactly one key/],
    ['version_policy: {}', /key 'version_policy' must have exactly one key/],
    ['version_policy: { specific: [0] }', /key 'version_policy\.specific\[0\]' must be >= 1/],
    ['version_policy: { newest: 2 }', /key 'version_policy\.newest' is not a known key/],
    ['preprocess: { x: { minmax: { min: [0] } } }', /key 'preprocess\.x\.minmax\.max' is required/],
    ['preprocess: { x: { minmax: { min: [0], max: [1] }, zscore: { mean: [0], std: [1] } } }', /key 'preprocess\.x' must have exactly one key/],
    ['preprocess: { x: { minmax: { min: [0, 0], max: [1] } } }', /key 'preprocess\.x\.minmax': min has 2 values but max has 1/],
    ['preprocess: { x: { minmax: { min: [1], max: [1] } } }', /key 'preprocess\.x\.minmax': max\[0\] must be greater than min\[0\]/],
    ['preprocess: { x: { zscore: { mean: [0], std: [0] } } }', /key 'preprocess\.x\.zscore': std\[0\] must be greater than 0/],
    ['preprocess: { x: { zscore: { mean: [0, 1], std: [1] } } }', /key 'preprocess\.x\.zscore': mean has 2 values but std has 1/],
    ['preprocess: { x: { minmax: { min: ["a"], max: [1] } } }', /key 'preprocess\.x\.minmax\.min\[0\]' must be number/],
    ['warmup: yes please', /key 'warmup' must be boolean/],
    ['- a list', /key '\(top level\)' must be object/],
    ['max_batch_size: [8', /not valid YAML/]
  ]
  for (const [text, re] of cases) {
    const err = (() => { try { parseModelConfig(text, FILE) } catch (e) { return e } })()
    t.type(err, ModelLoadError, text)
    t.equal((err as ModelLoadError).code, 'OS_ERR_MODEL_CONFIG', `${text}: code`)
    t.match((err as Error).message, /^\/models\/m\/config\.yaml: /, `${text}: names the file`)
    t.match((err as Error).message, re, `${text}: ${(err as Error).message}`)
  }
})

t.test('selectVersions applies each policy, highest first', async t => {
  const available = [1, 4, 2, 10]
  t.same(selectVersions({ latest: 1 }, available), [10])
  t.same(selectVersions({ latest: 2 }, available), [10, 4])
  t.same(selectVersions({ latest: 9 }, available), [10, 4, 2, 1])
  t.same(selectVersions({ all: {} }, available), [10, 4, 2, 1])
  t.same(selectVersions({ specific: [2, 3, 10] }, available), [10, 2])
  t.same(selectVersions({ latest: 1 }, []), [])
  t.same(available, [1, 4, 2, 10], 'the input is not modified')
})
