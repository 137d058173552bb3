/**
 * common/code-retention.ts: serve sets how many full collections V8 keeps an unused map
 * that optimised code depends on, unless the node command line sets it. What it changes
 * (no optimised function of the request path thrown away over an idle spell, against 91
 * with V8's default) was measured on a real sidecar with --trace-deopt
 * (bench/results/2026-12-07-warmup.md); a small script could not reproduce the discard
 * reliably, so it is not asserted here.
 */
import t from 'tap'
import { RETAIN_MAPS_GCS, retainOptimisedCode, setsMapRetention } from '../../common/code-retention.js'

t.test('the node command line wins, in either spelling', async t => {
  t.equal(setsMapRetention(['--retain-maps-for-n-gc=2']), true)
  t.equal(setsMapRetention(['--retain_maps_for_n_gc', '8']), true)
  t.equal(setsMapRetention(['--expose-gc', '--max-old-space-size=512']), false)
  t.equal(retainOptimisedCode(['--retain-maps-for-n-gc=2']), false, 'left to the command line')
})

t.test('otherwise it is set, process-wide, as serve does at start', async t => {
  t.ok(RETAIN_MAPS_GCS > 2, 'more than V8\'s default of 2')
  t.equal(retainOptimisedCode([]), true)
})
