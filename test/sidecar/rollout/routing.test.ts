/**
 * Rollouts over fake versions and a fake pool (test/fixtures/rollout/fakes.ts): what is
 * compared, blamed, dropped (and why), restarted and reported.
 */
import t from 'tap'
import { fakeRollouts, fakeVersion, tensor } from '../../fixtures/rollout/fakes.js'

const SAME = (): Record<string, ReturnType<typeof tensor>> => ({ probabilities: tensor([0.1, 0.8, 0.1]) })
const CANARY = 'rollout: { live: 1, candidate: 2, mode: canary, share: 1, promotion: { min_requests: 3, min_agreement: 0.9 } }'

t.test('canary: a failing live run is not blamed on the candidate', async t => {
  const f = fakeRollouts(CANARY)
  f.run = async () => { throw new Error('live blew up') }
  for (let i = 0; i < 3; i++) t.equal((await f.request(`k${i}`, SAME)).version, 2, 'the candidate answers (share 1)')
  const st = f.rollouts.state('m')
  t.match(st, { state: 'observing', compared: 0, candidate_errors: 0, live_errors: 3, agreement: null, decision: null })
  t.match(st.candidate, { requests: 3, errors: 0 })
  const text = await f.registry.metrics()
  t.notMatch(text, /result="error"/, 'no comparison counted as a candidate error')
  t.ok(f.logs.some(l => l.msg === 'rollout: live run for comparison failed; not compared'))
  // The candidate's own run failing in a shadow is still its error.
  const s = fakeRollouts('rollout: { live: 1, candidate: 2 }')
  s.run = async () => { throw new Error('candidate blew up') }
  await s.request('a', SAME)
  t.match(s.rollouts.state('m'), { compared: 1, candidate_errors: 1, live_errors: 0 })
})

t.test('drop reasons name the version that is busy, in both modes', async t => {
  const dropped = async (yaml: string, busy: (live: { queued: number, idle: boolean }, cand: { queued: number, idle: boolean }) => void): Promise<string> => {
    const f = fakeRollouts(yaml)
    busy((f.versions.get(1) as ReturnType<typeof fakeVersion>).batcher, (f.versions.get(2) as ReturnType<typeof fakeVersion>).batcher)
    await f.request('k', SAME)
    const m = /onnx_sidecar_rollout_shadow_dropped_total\{model="m",reason="(\w+)"\} 1/.exec(await f.registry.metrics())
    return m?.[1] ?? 'none'
  }
  const shadow = 'rollout: { live: 1, candidate: 2 }'
  const canary = 'rollout: { live: 1, candidate: 2, mode: canary, share: 1 }'
  t.equal(await dropped(shadow, l => { l.queued = 1; l.idle = false }), 'queue', 'shadow: live requests waiting')
  t.equal(await dropped(shadow, (_, c) => { c.idle = false }), 'candidate', 'shadow: the candidate (the version to run) is busy')
  t.equal(await dropped(canary, l => { l.queued = 1; l.idle = false }), 'queue', 'canary: live requests waiting')
  t.equal(await dropped(canary, (_, c) => { c.queued = 1; c.idle = false }), 'queue', 'canary: candidate answers (live traffic) waiting')
  t.equal(await dropped(canary, l => { l.idle = false }), 'live', 'canary: live (the version to run) is busy')
  t.equal(await dropped(canary, () => {}), 'none', 'nothing busy: runs')
  t.equal(await dropped(shadow, l => { l.idle = false }), 'busy', 'shadow: live still has requests running when the run would start')
  t.equal(await dropped(canary, (_, c) => { c.idle = false }), 'busy', 'canary: candidate answers still running when the run would start')
})

t.test('the rollout state counts drops by reason; the busy rule is checked again at start', async t => {
  const f = fakeRollouts('rollout: { live: 1, candidate: 2 }')
  const live = (f.versions.get(1) as ReturnType<typeof fakeVersion>).batcher
  live.idle = false
  await f.request('a', SAME)
  await f.request('b', SAME)
  t.match(f.rollouts.state('m'), { compared: 0, shadow_dropped: 2, shadow_dropped_by: { busy: 2 }, coverage: 0 })
  live.idle = true
  await f.request('c', SAME)
  t.match(f.rollouts.state('m'), { compared: 1, shadow_dropped: 2, shadow_dropped_by: { busy: 2 }, coverage: 1 / 3 })
  t.match(await f.registry.metrics(), /onnx_sidecar_rollout_shadow_dropped_total\{model="m",reason="busy"\} 2/)
})

t.test('requests without a version never go to the candidate while live is not serving', async t => {
  const f = fakeRollouts('rollout: { live: 1, candidate: 2 }')
  f.versions.delete(1)
  t.throws(() => f.rollouts.live('m'), { code: 'OS_ERR_MODEL_NOT_READY', statusCode: 503, message: /^model 'm' version 1 is not ready: the rollout's live version answers requests without a version and is not serving \(not loaded: not in the repository, or not the pinned version\)/ })
  t.match(f.rollouts.state('m'), { state: 'waiting', reason: 'version 1 is not serving' })
})

t.test('compare_output the model does not have, or output shapes that differ: incompatible, nothing compared', async t => {
  const f = fakeRollouts('rollout: { live: 1, candidate: 2, compare_output: probabilites, promotion: { min_requests: 2, min_agreement: 0.5 } }')
  await f.request('k', SAME)
  t.match(f.rollouts.state('m'), { state: 'incompatible', reason: "config.yaml: key 'rollout.compare_output' is 'probabilites', which is not an output of version 1 (outputs: probabilities)", compared: 0, decision: null })
  t.ok(f.logs.some(l => l.msg === 'rollout: candidate cannot stand in for live; no shadow or canary traffic' && /compare_output/.test(String(l.reason))))

  const g = fakeRollouts('rollout: { live: 1, candidate: 2 }', fakeVersion(1), fakeVersion(2, { outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 4] }] }))
  await g.request('k', SAME)
  t.match(g.rollouts.state('m'), { state: 'incompatible', reason: "output 'probabilities' has shape [-1,3] in version 1 but [-1,4] in version 2", compared: 0 })
})

t.test('a replaced model file starts the rollout over; the agreement gauge follows the rollout', async t => {
  const f = fakeRollouts('rollout: { live: 1, candidate: 2 }')
  await f.request('a', SAME)
  await f.request('b', SAME)
  t.match(f.rollouts.state('m'), { compared: 2 })
  t.match(await f.registry.metrics(), /onnx_sidecar_rollout_agreement_ratio\{model="m",live_version="1",candidate_version="2"\} 1/)

  f.versions.set(2, fakeVersion(2, { fingerprint: 'fp-2-new' }))
  t.match(f.rollouts.state('m'), { state: 'observing', compared: 0, agreement: null })
  t.ok(f.logs.some(l => l.msg === 'rollout: model file replaced: starting over' && (l.versions as number[])[0] === 2))
  t.notMatch(await f.registry.metrics(), /onnx_sidecar_rollout_agreement_ratio\{/, 'the old agreement is gone')
  await f.request('c', SAME)
  t.match(f.rollouts.state('m'), { compared: 1 })
  f.versions.set(1, fakeVersion(1, { fingerprint: 'fp-1-new' }))
  t.equal(f.rollouts.live('m')?.fingerprint, 'fp-1-new')
  t.match(f.rollouts.state('m'), { compared: 0 }, 'live\'s file too')

  await f.request('d', SAME)
  f.configure('rollout: { live: 1, candidate: 2, sample: 0.5 }')
  t.notMatch(await f.registry.metrics(), /onnx_sidecar_rollout_agreement_ratio\{/, 'a changed block: the gauge goes')
  f.configure('rollout: { live: 1, candidate: 2 }')
  await f.request('e', SAME)
  t.match(await f.registry.metrics(), /onnx_sidecar_rollout_agreement_ratio\{/)
  f.configure('')
  t.notMatch(await f.registry.metrics(), /onnx_sidecar_rollout_agreement_ratio\{/, 'a removed block: the gauge goes')
})

t.test('a decided rollout stays decided while its candidate\'s content is the same', async t => {
  // 8 one-row requests: the Wilson bounds at 95 % are [0.68, 1] all agreeing, [0, 0.32] none.
  const rule = 'promotion: { min_requests: 8, min_agreement: 0.5 }'
  const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
  const promoted = fakeRollouts(`rollout: { live: 1, candidate: 2, ${rule} }`)
  for (const k of keys) await promoted.request(k, SAME)
  t.equal(promoted.rollouts.state('m').state, 'promoted')
  promoted.versions.set(1, fakeVersion(1, { fingerprint: 'fp-1-new' }))
  t.match(promoted.rollouts.state('m'), { state: 'promoted', live_version: '2', compared: 8 }, 'a new live file: still promoted')
  t.equal((await promoted.request('i', SAME)).version, 2, 'the promoted candidate keeps answering')
  t.ok(promoted.logs.some(l => l.msg === 'rollout: live model file replaced; the decision stands'))
  promoted.versions.set(2, fakeVersion(2, { fingerprint: 'fp-2-new' }))
  t.match(promoted.rollouts.state('m'), { state: 'observing', live_version: '1', compared: 0 }, 'a new candidate content is observed again')

  const rolledBack = fakeRollouts(`rollout: { live: 1, candidate: 2, ${rule} }`)
  for (const k of keys) await rolledBack.request(k, () => ({ probabilities: tensor([0.8, 0.1, 0.1]) }))
  t.equal(rolledBack.rollouts.state('m').state, 'rolled_back')
  rolledBack.versions.set(1, fakeVersion(1, { fingerprint: 'fp-1-new' }))
  t.match(rolledBack.rollouts.state('m'), { state: 'rolled_back', compared: 8 }, 'a new live file does not retry the candidate')
  rolledBack.versions.set(2, fakeVersion(2, { fingerprint: 'fp-2-new' }))
  t.match(rolledBack.rollouts.state('m'), { state: 'observing', compared: 0 }, 'a new candidate content is tried')
})

t.test('the configured log line names the promotion keys as config.yaml does', async t => {
  const f = fakeRollouts('rollout: { live: 1, candidate: 2, promotion: { min_requests: 10, min_agreement: 0.9 }, rollback: { below_agreement: 0.5 } }')
  const line = f.logs.find(l => l.msg === 'rollout configured')
  t.same(line?.promotion, { min_requests: 10, min_agreement: 0.9, max_error_rate_delta: 0 })
  t.same(line?.rollback, { below_agreement: 0.5 })
})

t.test('one worker and a live version on it: the state says comparisons cannot run, warned once', async t => {
  const f = fakeRollouts('rollout: { live: 1, candidate: 2, promotion: { min_requests: 2, min_agreement: 0.5 } }')
  f.pool.size = 1
  f.pool.idle = 1
  for (const k of ['a', 'b', 'c']) await f.request(k, SAME)
  t.match(f.rollouts.state('m'), { state: 'blocked', reason: 'shadow needs an idle worker: give the sidecar 2 workers (onnx-sidecar.io/cpu-limit: "4" or --workers 2)', compared: 0, shadow_dropped: 3 })
  t.match(await f.registry.metrics(), /onnx_sidecar_rollout_shadow_dropped_total\{model="m",reason="worker"\} 3/, 'the drop rule is unchanged')
  t.equal(f.logs.filter(l => l.msg === 'rollout: comparisons cannot run; every shadow run is dropped (reason worker) and no decision will be taken').length, 1, 'warned once')

  const inline = fakeRollouts('rollout: { live: 1, candidate: 2 }', fakeVersion(1, { inline: true }))
  inline.pool.size = 1
  inline.pool.idle = 1
  await inline.request('a', SAME)
  t.match(inline.rollouts.state('m'), { state: 'observing', compared: 1 }, 'a live version that runs inline needs only the one worker')
})

t.test('the compare: block reaches the shadow comparison: metric and tolerances, rows in the state', async t => {
  const f = fakeRollouts('rollout: { live: 1, candidate: 2, compare: { metric: probabilities, max_shift: 0.05 } }')
  // Live answers [0.1, 0.7, 0.2], the candidate's run [0.1, 0.8, 0.1]: top-1 the same (class 1), moved by 0.1 > max_shift.
  await f.request('a', () => ({ probabilities: tensor([0.1, 0.7, 0.2]) }))
  await f.request('b', SAME)
  t.match(f.rollouts.state('m'), { compared: 2, agreed: 1, disagreed: 1, rows: 2, rows_agreed: 1, agreement: 0.5, metric: 'probabilities', coverage: 1 })
  const cal = f.rollouts.state('m').calibration as { class: number, ratio: number }
  t.equal(cal.class, 2, 'class 2 is the furthest from 1')
  t.ok(Math.abs(cal.ratio - 0.2 / 0.3) < 1e-6, `mean candidate / mean live: (0.1 + 0.1) / (0.2 + 0.1) = ${cal.ratio}`)
})
