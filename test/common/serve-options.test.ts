import t from 'tap'
import { readConfig } from '../../common/config.js'
import { DEFAULT_MEMORY_BUDGET, requestLimits } from '../../common/memory-limit.js'
import { SERVE_DEFAULTS, serveOptions } from '../../common/serve-options.js'

t.test('serve\'s option table takes its defaults from SERVE_DEFAULTS, frozen', async t => {
  t.ok(Object.isFrozen(SERVE_DEFAULTS))
  const read = new Map(Object.entries(readConfig(serveOptions(), [], {})))
  for (const [key, value] of Object.entries(SERVE_DEFAULTS)) t.equal(read.get(key), value, key)
})

t.test('request memory derives one way: the budget rule, which the in-process Sidecar\'s default also applies', async t => {
  t.equal(SERVE_DEFAULTS.requestMemory, 0, 'derived at start-up')
  t.equal(requestLimits(DEFAULT_MEMORY_BUDGET).requestBytes, 128 * 1024 * 1024, '512 MiB / 4')
})

t.test('--idle-release and --young-generation-max: flags and variables, 0 turns each off, a bad value names the flag', async t => {
  const opts = readConfig(serveOptions(), ['--idle-release', '0', '--young-generation-max', '8Mi'], {})
  t.equal(opts.idleRelease, 0)
  t.equal(opts.youngGenerationMax, 8 * 1024 * 1024)
  const env = readConfig(serveOptions(), [], { ONNX_SIDECAR_IDLE_RELEASE_MS: '30000', ONNX_SIDECAR_YOUNG_GENERATION_MAX: '0' })
  t.equal(env.idleRelease, 30_000)
  t.equal(env.youngGenerationMax, 0)
  t.throws(() => readConfig(serveOptions(), ['--idle-release', '-1'], {}), /--idle-release/)
  t.throws(() => readConfig(serveOptions(), [], { ONNX_SIDECAR_YOUNG_GENERATION_MAX: 'lots' }), /ONNX_SIDECAR_YOUNG_GENERATION_MAX/)
})
