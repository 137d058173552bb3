/**
 * `--old-generation-growth` (common/old-generation.ts): sets V8's heap growing percent unless
 * it is 0 or the node command line already sets it; and the option's parsing.
 */
import t from 'tap'
import { limitOldGenerationGrowth, setsHeapGrowing } from '../../common/old-generation.js'
import { readConfig } from '../../common/config.js'
import { serveOptions } from '../../common/serve-options.js'

t.test('the node command line wins; 0 leaves V8 alone', async t => {
  t.equal(setsHeapGrowing(['--heap-growing-percent=30']), true)
  t.equal(setsHeapGrowing(['--heap_growing_percent', '30']), true)
  t.equal(setsHeapGrowing(['--max-old-space-size=512']), false)
  t.equal(limitOldGenerationGrowth(0, []), false)
  t.equal(limitOldGenerationGrowth(50, ['--heap-growing-percent=30']), false)
  t.equal(limitOldGenerationGrowth(50, []), true, 'set (process-wide, as serve does)')
})

t.test('--old-generation-growth: default 50, flag and variable, a bad value names the flag', async t => {
  t.equal(readConfig(serveOptions(), [], {}).oldGenerationGrowth, 50)
  t.equal(readConfig(serveOptions(), ['--old-generation-growth', '0'], {}).oldGenerationGrowth, 0)
  t.equal(readConfig(serveOptions(), [], { ONNX_SIDECAR_OLD_GENERATION_GROWTH: '100' }).oldGenerationGrowth, 100)
  t.throws(() => readConfig(serveOptions(), ['--old-generation-growth', '-5'], {}), /--old-generation-growth/)
  t.throws(() => readConfig(serveOptions(), [], { ONNX_SIDECAR_OLD_GENERATION_GROWTH: 'half' }), /ONNX_SIDECAR_OLD_GENERATION_GROWTH/)
})
