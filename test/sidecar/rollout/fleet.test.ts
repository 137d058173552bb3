/**
 * Fleet mode: a rollout that the Deployment decides (`--candidate`, `--canary`, or
 * `decide: fleet` in config.yaml). The pod runs the candidate, measures and exports the
 * evidence, and never promotes or rolls back itself.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { readConfig } from '../../../common/config.js'
import { serveOptions } from '../../../common/serve-options.js'
import { parseModelConfig } from '../../../sidecar/models/model-config.js'
import { fleetRollout, ROLLOUT_DEFAULTS } from '../../../sidecar/models/rollout-config.js'
import type { RolloutConfig } from '../../../sidecar/models/config-types.js'
import { metricsText, ROOT, startSidecar, type Running } from '../../fixtures/sidecar.js'
import { IRIS_BAD, IRIS_GOOD, irisRepo, irisRequest, irisRows } from '../../fixtures/rollout/repo.js'
import { fakeRollouts, tensor } from '../../fixtures/rollout/fakes.js'

const block = (yaml: string): RolloutConfig | undefined => parseModelConfig(yaml, 'config.yaml').rollout

t.test('decide: fleet in config.yaml: measured, never decided by the pod; thresholds default to min_agreement 0.98', async t => {
  const f = fakeRollouts('rollout: { live: 1, candidate: 2, decide: fleet, promotion: { min_requests: 2, min_agreement: 0.5 } }')
  for (const k of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']) await f.request(k, () => ({ probabilities: tensor([0.1, 0.8, 0.1]) }))
  const st = f.rollouts.state('m') as any
  t.match(st, { decided_by: 'fleet', state: 'observing', compared: 10, decision: null, live_version: '1' }, 'the same rule in a pod would have promoted at 8')
  t.match(st.evidence, { requests: 10, rows: 10, agreeing: 10, effective_rows: 10, agreement: 1, confidence: 0.95 })
  t.ok(st.evidence.lower > 0.5 && st.evidence.upper === 1, `bounds [${st.evidence.lower}, ${st.evidence.upper}]`)
  t.match(fakeRollouts('rollout: { live: 1, candidate: 2 }').rollouts.state('m'), { decided_by: 'pod', promotion: null, evidence: { requests: 0, lower: null, upper: null } })

  t.match(block('rollout: { live: 1, candidate: 2, decide: fleet }')?.promotion, { minAgreement: ROLLOUT_DEFAULTS.minAgreement, minRequests: 100, confidence: 0.95 }, 'no promotion block: the defaults')
  t.throws(() => block('rollout: { live: 1, candidate: 2, decide: team }'), /config\.yaml.*rollout.*decide/, 'only pod or fleet')
  t.throws(() => block('rollout: { live: 1, candidate: 2, decide: fleet, sample: 0 }'), /key 'rollout.sample' is 0, so nothing is ever compared and the fleet can never decide/)
})

t.test('--candidate wins over the rollout: block and keeps its thresholds', async t => {
  const mine = block('rollout: { live: 3, candidate: 4, mode: canary, share: 0.2, sticky_header: X-User, sample: 0.5, compare: { metric: probabilities, max_shift: 0.05 }, promotion: { min_requests: 500, min_agreement: 0.99 }, rollback: { below_agreement: 0.9 } }')
  const shadow = fleetRollout(mine, { model: 'ads', version: 2, canary: undefined }, 1)
  t.match(shadow, { live: 1, candidate: 2, mode: 'shadow', share: 0, stickyHeader: undefined, sample: 0.5, decide: 'fleet', compare: { metric: 'probabilities', maxShift: 0.05 }, promotion: { minRequests: 500, minAgreement: 0.99, rollbackBelow: 0.9 } })
  const canary = fleetRollout(mine, { model: 'ads', version: 2, canary: 10 }, 1)
  t.match(canary, { mode: 'canary', share: 0.1, stickyHeader: 'x-user', decide: 'fleet' }, 'a canary keeps the block\'s sticky header')
  const bare = fleetRollout(undefined, { model: 'ads', version: 2, canary: 5 }, 1)
  t.match(bare, { live: 1, candidate: 2, mode: 'canary', share: 0.05, sample: 1, decide: 'fleet', promotion: { minRequests: 100, minAgreement: 0.98, rollbackBelow: 0.98 } }, 'no block: the defaults')
  t.equal(fleetRollout(block('rollout: { live: 1, candidate: 3, mode: canary, share: 0.5, sample: 0 }'), { model: 'ads', version: 2, canary: 10 }, 1).sample, 1, 'a block that compares nothing: the fleet still gets evidence')
})

t.test('serve flags: --candidate and --canary parse with the contract\'s rules', async t => {
  const opts = readConfig(serveOptions(), ['--model', 'ads:1', '--candidate', 'ads:2', '--canary', '10'], {})
  t.same([opts.candidate, opts.canary], [{ model: 'ads', version: 2 }, 10])
  const none = readConfig(serveOptions(), [], {})
  t.same([none.candidate, none.canary], [undefined, undefined])
  t.same(readConfig(serveOptions(), [], { ONNX_SIDECAR_CANDIDATE: '3' }).candidate, { version: 3 }, 'from the environment')
  t.throws(() => readConfig(serveOptions(), ['--canary', '60'], {}), /--canary.*'60' is not a canary percent \(an integer from 1 to 50\)/)
  t.throws(() => readConfig(serveOptions(), ['--candidate', 'ads:two'], {}), /--candidate.*'ads:two' is not a candidate version/)
})

t.test('serve: a candidate the pod cannot run is a usage error (exit 2) naming the flag, before anything loads', async t => {
  const serve = (...args: string[]): { status: number | null, stderr: string } => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli', 'main.js'), 'serve', '--model-repository', ROOT, ...args], { encoding: 'utf8', timeout: 30_000 })
    return { status: r.status, stderr: r.stderr }
  }
  t.same(serve('--model', 'ads:1', '--candidate', 'ads:1'), { status: 2, stderr: "onnx-sidecar serve: --candidate 'ads:1' is the version --model pins as live ('ads:1'); the candidate must be another version\n" })
  t.same(serve('--model', 'ads', '--canary', '10'), { status: 2, stderr: 'onnx-sidecar serve: --canary needs --candidate: a canary of which version?\n' })
})

async function compared (s: Running, n: number): Promise<any> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const st = (await s.get('/v2/models/iris/rollout')).body
    if (st.compared >= n || st.state !== 'observing' || Date.now() > deadline) return st
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

t.test('a pinned model with --candidate: both versions load, the candidate is measured, never promoted or rolled back', async t => {
  // The block would roll this candidate back in a pod within 16 requests; the fleet flag wins and keeps its thresholds.
  const repo = await irisRepo(IRIS_BAD, 'rollout: { live: 1, candidate: 3, promotion: { min_requests: 4, min_agreement: 0.9 } }')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir, workers: 2, models: [{ name: 'iris', version: 1 }], fleet: { model: 'iris', version: 2, canary: undefined } })
  t.teardown(s.close)
  const rows = (await irisRows()).slice(0, 40)
  for (const [i, row] of rows.entries()) {
    const res = await s.post('/v2/models/iris/infer', irisRequest(row, `r${i}`))
    t.equal(res.status, 200)
    if (res.body.model_version !== '1') t.fail(`answered by ${res.body.model_version}`)
    await compared(s, i + 1) // one at a time: no shadow run is dropped
  }
  const st = await compared(s, rows.length)
  t.match(st, { decided_by: 'fleet', mode: 'shadow', state: 'observing', live_version: '1', candidate_version: '2', compared: rows.length, decision: null, promotion: { min_requests: 4, min_agreement: 0.9 } })
  t.ok(st.agreement < 0.5, `the shuffled-label candidate disagrees (${st.agreement}), and is not rolled back by the pod`)
  t.match(st.evidence, { requests: rows.length, rows: rows.length })
  t.equal((await s.post('/v2/models/iris/versions/2/infer', irisRequest(rows[0] as number[]))).status, 200, 'the candidate serves an explicit version')
  const text = await metricsText(s.metricsUrl)
  t.match(text, new RegExp(`onnx_sidecar_rollout_evidence_total\\{model="iris",live_version="1",candidate_version="2",stat="requests"\\} ${rows.length}\\b`))
  t.match(text, /onnx_sidecar_rollout_answers_total\{model="iris",live_version="1",candidate_version="2",arm="candidate",result="ok"\} 40\b/)
  t.match(text, /onnx_sidecar_rollout_latency_seconds_count\{model="iris",live_version="1",candidate_version="2",arm="live"\} 40\b/)
  t.notMatch(text, /onnx_sidecar_rollout_(rollbacks|promotions)_total\{/, 'nothing decided')
})

t.test('--candidate with --canary and no pin: live is the policy\'s version besides the candidate', async t => {
  const repo = await irisRepo(IRIS_GOOD, '')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir, workers: 2, fleet: { model: 'iris', version: 2, canary: 50 } })
  t.teardown(s.close)
  const seen = new Set<string>()
  for (let i = 0; i < 20; i++) seen.add((await s.post('/v2/models/iris/infer', irisRequest([5.1, 3.5, 1.4, 0.2], `k${i}`))).body.model_version)
  t.same([...seen].sort(), ['1', '2'], 'both versions answer')
  t.match((await s.get('/v2/models/iris/rollout')).body, { decided_by: 'fleet', mode: 'canary', share: 0.5, live_version: '1', candidate_version: '2' })
})
