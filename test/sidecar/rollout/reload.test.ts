import t from 'tap'
import { utimes } from 'node:fs/promises'
import path from 'node:path'
import { grpcClient } from '../../fixtures/grpc-client.js'
import { metricsText, startSidecar, type Running } from '../../fixtures/sidecar.js'
import { IRIS_GOOD, IRIS_V1, irisRepo, irisRequest } from '../../fixtures/rollout/repo.js'

const ROW = [5.1, 3.5, 1.4, 0.2]

async function answeredBy (s: Running): Promise<string> {
  const res = await s.post('/v2/models/iris/infer', irisRequest(ROW))
  if (res.status !== 200) throw new Error(`${res.status} ${JSON.stringify(res.body)}`)
  return res.body.model_version
}

async function compared (s: Running, n: number): Promise<any> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const st = (await s.get('/v2/models/iris/rollout')).body
    if (st.compared + st.shadow_dropped >= n) return st
    if (Date.now() > deadline) throw new Error(`not compared: ${JSON.stringify(st)}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

t.test('config.yaml rollout changes are picked up hot', async t => {
  const repo = await irisRepo(IRIS_V1, '')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir, workers: 2 })
  t.teardown(s.close)
  const reload = async (extra: string): Promise<void> => {
    await repo.config(extra)
    await s.sidecar.manager.reconcile()
  }

  t.equal(await answeredBy(s), '2', 'no rollout: the version policy (latest: 1) answers')
  t.equal((await s.get('/v2/models/iris/rollout')).body.state, 'off')

  await reload('rollout: { live: 1, candidate: 2 }')
  t.same(s.sidecar.manager.index().filter(e => e.name === 'iris').map(e => [e.version, e.state]), [['2', 'READY'], ['1', 'READY']], 'the live version is loaded beside the policy\'s pick')
  t.equal(await answeredBy(s), '1', 'the rollout\'s live version answers')
  await compared(s, 1)
  await answeredBy(s)
  t.match(await compared(s, 2), { state: 'observing', compared: 2 })
  t.ok(s.logs.some(l => l.msg === 'rollout configured' && l.model === 'iris'))

  await reload('rollout: { live: 1, candidate: 2 }\nwarmup: true')
  t.equal((await s.get('/v2/models/iris/rollout')).body.compared, 2, 'an unchanged rollout keeps its counts across a reload')

  await reload('rollout: { live: 1, candidate: 2, sample: 0.5 }')
  t.match((await s.get('/v2/models/iris/rollout')).body, { compared: 0, sample: 0.5 }, 'a changed rollout starts over')
  t.ok(s.logs.some(l => l.msg === 'rollout changed: starting over'))

  await reload('rollout: { live: 1, candidate: 1 }')
  const broken = s.sidecar.manager.index().find(e => e.name === 'iris' && e.version === '1')
  t.match(broken?.reason, /config\.yaml: key 'rollout\.candidate' must differ from 'rollout\.live'/, 'a broken rollout is reported with file and key')
  t.equal(await answeredBy(s), '1', 'and the last good rollout keeps running')
  t.equal((await s.get('/v2/models/iris/rollout')).body.sample, 0.5)

  await reload('')
  t.equal((await s.get('/v2/models/iris/rollout')).body.state, 'off', 'removed: off')
  t.equal(await answeredBy(s), '2')
  t.same(s.sidecar.manager.index().filter(e => e.name === 'iris').map(e => e.version), ['2'], 'version 1 is unloaded again')
})

t.test('a rollout whose candidate is missing waits and serves live', async t => {
  const repo = await irisRepo(undefined, 'rollout: { live: 1, candidate: 2 }')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir, workers: 2 })
  t.teardown(s.close)
  t.equal(await answeredBy(s), '1')
  t.match((await s.get('/v2/models/iris/rollout')).body, { state: 'waiting', reason: 'version 2 is not serving' })
  await repo.version(2, IRIS_V1)
  await s.sidecar.manager.reconcile()
  t.equal(await answeredBy(s), '1')
  t.match(await compared(s, 1), { state: 'observing', compared: 1 })
})

t.test('while live is not serving, requests without a version get 503, never the candidate', async t => {
  const repo = await irisRepo(IRIS_V1, 'rollout: { live: 3, candidate: 2 }')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir, workers: 2, grpc: true })
  t.teardown(s.close)
  const grpc = grpcClient(s.grpcAddress)
  t.teardown(() => grpc.close())
  const res = await s.post('/v2/models/iris/infer', irisRequest(ROW))
  t.equal(res.status, 503)
  t.match(res.body, { code: 'OS_ERR_MODEL_NOT_READY', error: /^model 'iris' version 3 is not ready: the rollout's live version answers requests without a version and is not serving \(not loaded: not in the repository, or not the pinned version\)/ })
  t.match((await s.get('/v2/models/iris/rollout')).body, { state: 'waiting', reason: 'version 3 is not serving', compared: 0 })
  t.equal((await s.post('/v2/models/iris/versions/2/infer', irisRequest(ROW))).body.model_version, '2', 'named, the candidate still answers')
  // Readiness says what a request without a version gets.
  t.equal((await s.get('/v2/models/iris/ready')).status, 503, 'the model is not ready')
  t.equal((await s.get('/v2/health/ready')).status, 503, 'nor is the sidecar')
  t.equal((await s.get('/v2/models/iris/versions/2/ready')).status, 200, 'version 2 itself serves')
  t.same(await grpc.ModelReady({ name: 'iris', version: '' }), { ready: false }, 'gRPC says the same')
  t.same(await grpc.ServerReady({}), { ready: false })
  t.match(s.sidecar.manager.index().filter(e => e.name === 'iris'), [
    { version: '3', state: 'UNAVAILABLE', reason: /^version 3, the rollout's live version, answers requests without a version and is not serving \(not loaded: not in the repository\)/ },
    { version: '2', state: 'READY' }
  ], 'the index says why')
  await repo.version(3, IRIS_V1)
  await s.sidecar.manager.reconcile()
  t.equal(await answeredBy(s), '3', 'live is back')
  t.equal((await s.get('/v2/models/iris/ready')).status, 200)
  t.equal((await s.get('/v2/health/ready')).status, 200)
  t.same(await grpc.ModelReady({ name: 'iris', version: '' }), { ready: true })
  t.same(await grpc.ServerReady({}), { ready: true })
})

t.test('replacing a version\'s model.onnx in place starts the rollout over; a compare_output typo is incompatible', async t => {
  const repo = await irisRepo(IRIS_V1, 'rollout: { live: 1, candidate: 2 }')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir, workers: 2 })
  t.teardown(s.close)
  await answeredBy(s)
  await compared(s, 1)
  await answeredBy(s)
  t.match(await compared(s, 2), { compared: 2 })
  t.match(await metricsText(s.metricsUrl), /onnx_sidecar_rollout_agreement_ratio\{model="iris",live_version="1",candidate_version="2"\} 1/)

  await repo.version(2, IRIS_GOOD)
  await s.sidecar.manager.reconcile()
  t.match((await s.get('/v2/models/iris/rollout')).body, { state: 'observing', compared: 0, agreement: null }, 'a fixed candidate gets fresh counts')
  t.ok(s.logs.some(l => l.msg === 'rollout: model file replaced: starting over' && l.model === 'iris'))
  t.notMatch(await metricsText(s.metricsUrl), /onnx_sidecar_rollout_agreement_ratio\{model="iris"/, 'the old agreement is not reported')

  await repo.config('rollout: { live: 1, candidate: 2, compare_output: probabilites }')
  await s.sidecar.manager.reconcile()
  const st = (await s.get('/v2/models/iris/rollout')).body
  t.match(st, { state: 'incompatible', reason: "config.yaml: key 'rollout.compare_output' is 'probabilites', which is not an output of version 1 (outputs: label, probabilities)" })
  await answeredBy(s)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal((await s.get('/v2/models/iris/rollout')).body.compared, 0, 'nothing compared, nothing decided')
})

t.test('a touch of a promoted rollout\'s model files reloads nothing and keeps the promotion', async t => {
  // 8 one-row requests, all agreeing: the lower bound at 95 % is 0.68 >= 0.5.
  const repo = await irisRepo(IRIS_V1, 'rollout: { live: 1, candidate: 2, promotion: { min_requests: 8, min_agreement: 0.5 } }')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir, workers: 2 })
  t.teardown(s.close)
  for (let i = 0; i < 8; i++) {
    await answeredBy(s)
    await compared(s, i + 1)
  }
  t.match((await s.get('/v2/models/iris/rollout')).body, { state: 'promoted', live_version: '2' })
  const loaded = s.logs.filter(l => l.msg === 'model version ready').length
  const later = new Date(Date.now() + 60_000)
  for (const v of [1, 2]) await utimes(path.join(repo.dir, 'iris', String(v), 'model.onnx'), later, later)
  await s.sidecar.manager.reconcile()
  t.equal(s.logs.filter(l => l.msg === 'model version ready').length, loaded, 'nothing reloaded')
  t.match((await s.get('/v2/models/iris/rollout')).body, { state: 'promoted', live_version: '2', compared: 8 }, 'still promoted')
  t.equal(await answeredBy(s), '2', 'the promoted candidate keeps answering')
})

t.test('a model pinned to a version serves its pin; the repository\'s rollout does not apply to it', async t => {
  const repo = await irisRepo(IRIS_GOOD, 'rollout: { live: 1, candidate: 2, mode: shadow }')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir, workers: 2, models: [{ name: 'iris', version: 2 }] })
  t.teardown(s.close)
  t.equal(await answeredBy(s), '2', 'requests without a version get the pinned version, not a 503 for the rollout\'s live one')
  t.match((await s.get('/v2/models/iris/rollout')).body, { state: 'off' })
})
