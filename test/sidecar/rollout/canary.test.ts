import t from 'tap'
import { inCanary } from '../../../sidecar/rollout/sticky.js'
import { metricsText, startSidecar, type Running } from '../../fixtures/sidecar.js'
import { IRIS_GOOD, irisRepo, irisRequest } from '../../fixtures/rollout/repo.js'

const ROW = [5.1, 3.5, 1.4, 0.2]
const SALT = 'iris:2' // model and candidate version: a rollout's cohort

async function version (s: Running, body: object, headers: Record<string, string> = {}, path = '/v2/models/iris/infer'): Promise<string> {
  const res = await s.post(path, body, headers)
  if (res.status !== 200) throw new Error(`${res.status} ${JSON.stringify(res.body)}`)
  return res.body.model_version
}

t.test('canary by request id: one key, one version; the share is about right', async t => {
  const repo = await irisRepo(IRIS_GOOD, 'rollout: { live: 1, candidate: 2, mode: canary, share: 0.3, sample: 0 }')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir, workers: 2 })
  t.teardown(s.close)

  let candidate = 0
  const keys = Array.from({ length: 200 }, (_, i) => `order-${i}`)
  for (const key of keys) {
    const first = await version(s, irisRequest(ROW, key))
    const again = await version(s, irisRequest([6.3, 2.9, 5.6, 1.8], key))
    if (first !== again) t.fail(`key ${key} saw versions ${first} and ${again}`)
    if (first !== (inCanary(SALT, key, 0.3) ? '2' : '1')) t.fail(`key ${key}: version ${first} is not the stable hash's pick`)
    if (first === '2') candidate++
  }
  t.ok(Math.abs(candidate / keys.length - 0.3) < 0.1, `candidate answered ${candidate} of ${keys.length} keys`)
  const text = await metricsText(s.metricsUrl)
  t.match(text, new RegExp(`onnx_sidecar_rollout_canary_requests_total\\{model="iris",version="2",arm="candidate"\\} ${candidate * 2}\\b`))
  t.match(text, new RegExp(`onnx_sidecar_rollout_canary_requests_total\\{model="iris",version="1",arm="live"\\} ${(keys.length - candidate) * 2}\\b`))
  const st = (await s.get('/v2/models/iris/rollout')).body
  t.match(st, { mode: 'canary', share: 0.3, sticky_key: 'id', live: { requests: (keys.length - candidate) * 2, errors: 0 }, candidate: { requests: candidate * 2, errors: 0 }, compared: 0 })

  // Explicit versions are untouched, whatever the key.
  const inCohort = keys.find(k => inCanary(SALT, k, 0.3)) as string
  t.equal(await version(s, irisRequest(ROW, inCohort), {}, '/v2/models/iris/versions/1/infer'), '1')
  // No key at all: still answered (assigned at random).
  t.match(await version(s, irisRequest(ROW)), /^[12]$/)
})

t.test('canary by header (REST header, gRPC metadata): the user keeps a version across request ids', async t => {
  const repo = await irisRepo(IRIS_GOOD, 'rollout: { live: 1, candidate: 2, mode: canary, share: 0.5, sticky_header: X-User }')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir, grpc: true })
  t.teardown(s.close)
  const { grpcClient, f32 } = await import('../../fixtures/grpc-client.js')
  const c = grpcClient(s.grpcAddress)
  t.teardown(() => c.close())

  const seen = new Set<string>()
  for (let u = 0; u < 20; u++) {
    const user = `user-${u}`
    const want = inCanary(SALT, user, 0.5) ? '2' : '1'
    for (let i = 0; i < 3; i++) t.equal(await version(s, irisRequest(ROW, `${user}-req-${i}`), { 'x-user': user }), want, `${user} over REST`)
    const res = await c.ModelInfer({ model_name: 'iris', id: `g-${u}`, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [f32(ROW)] }, { metadata: { 'x-user': user } })
    t.equal(res.model_version, want, `${user} over gRPC`)
    seen.add(want)
  }
  t.same([...seen].sort(), ['1', '2'], 'both sides are used')
})

t.test('canary promotion: the compared candidate becomes live for everybody', async t => {
  // 10 one-row requests, all agreeing: the lower bound at 95 % is 0.72 >= 0.5 (0.9 would need 35).
  const repo = await irisRepo(IRIS_GOOD, 'rollout: { live: 1, candidate: 2, mode: canary, share: 0.5, promotion: { min_requests: 10, min_agreement: 0.5 } }')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir, workers: 2 })
  t.teardown(s.close)
  const live = Array.from({ length: 40 }, (_, i) => `k${i}`).filter(k => !inCanary(SALT, k, 0.5))
  const cand = Array.from({ length: 80 }, (_, i) => `k${i}`).filter(k => inCanary(SALT, k, 0.5))
  t.ok(cand.length >= 10)
  let st: any
  for (const key of cand.slice(0, 10)) {
    t.equal(await version(s, irisRequest(ROW, key)), '2')
    // The candidate answered; live runs after it for the comparison. One at a time, so none is dropped.
    const deadline = Date.now() + 30_000
    do {
      st = (await s.get('/v2/models/iris/rollout')).body
      if (Date.now() > deadline) throw new Error('no comparison')
    } while (st.compared + st.shadow_dropped < cand.indexOf(key) + 1 && st.state === 'observing')
  }
  t.equal(st.state, 'promoted')
  t.equal(st.compared, 10)
  t.equal(st.live_version, '2')
  t.match(await metricsText(s.metricsUrl), /onnx_sidecar_rollout_promotions_total\{model="iris",version="2"\} 1/)
  for (const key of live.slice(0, 5)) t.equal(await version(s, irisRequest(ROW, key)), '2', `${key} (was on live) now gets version 2`)
})

t.test('canary by header: a repeated REST header is keyed by its first value', async t => {
  const repo = await irisRepo(IRIS_GOOD, 'rollout: { live: 1, candidate: 2, mode: canary, share: 0.5, sticky_header: X-User, sample: 0 }')
  t.teardown(repo.remove)
  const s = await startSidecar({ repository: repo.dir })
  t.teardown(s.close)
  // Users whose own cohort differs from that of the two values joined ('user-N, other').
  const users = Array.from({ length: 40 }, (_, u) => `user-${u}`).filter(u => inCanary(SALT, u, 0.5) !== inCanary(SALT, `${u}, other`, 0.5)).slice(0, 4)
  t.ok(users.length >= 2)
  for (const user of users) {
    const want = inCanary(SALT, user, 0.5) ? '2' : '1'
    t.equal(await version(s, irisRequest(ROW), { 'x-user': [user, 'other'] as unknown as string }), want, `${user} sent twice keeps its version`)
  }
})
