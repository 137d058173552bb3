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
