import t from 'tap'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { setsSemiSpace } from '../../common/young-generation.js'
import { ROOT } from '../fixtures/sidecar.js'

const MODULE = path.join(ROOT, 'dist', 'common', 'young-generation.js')
const MIB = 1024 * 1024

t.test('an explicit semi-space flag is left alone', async t => {
  t.equal(setsSemiSpace([], undefined), false)
  t.equal(setsSemiSpace(['--enable-source-maps'], '--max-old-space-size=256'), false)
  t.equal(setsSemiSpace(['--max-semi-space-size=4'], undefined), true)
  t.equal(setsSemiSpace([], '--enable-source-maps --semi-space-growth-factor=3'), true)
  t.equal(setsSemiSpace([], '--min_semi_space_size=2'), true)
})

t.test('held, the new space stays at its initial size under surviving allocation; released, it grows', async t => {
  // A child process: V8 flags are process-wide. Objects that survive a scavenge or two make V8 grow the new space.
  const script = `
    import v8 from 'node:v8'
    import { holdYoungGeneration, releaseYoungGeneration } from ${JSON.stringify(MODULE)}
    const newSpace = () => v8.getHeapSpaceStatistics().find(s => s.space_name === 'new_space').space_size
    const churn = () => { let keep = []; for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 50000) keep = [] } }
    holdYoungGeneration()
    churn()
    const held = newSpace()
    releaseYoungGeneration()
    churn()
    console.log(JSON.stringify({ held, released: newSpace() }))`
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as { held: number, released: number }
  t.ok(out.held <= 4 * MIB, `held: ${out.held / MIB} MiB of new space`)
  t.ok(out.released > out.held, `released: ${out.released / MIB} MiB of new space`)
})
