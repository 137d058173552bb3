import t from 'tap'
import { loadCluster, snapshotOf, pod } from '../../fixtures/doctor/cluster.js'
import { checkSidecarsNotReady, modelLoadReasons } from '../../../cluster/doctor/checks/sidecar-not-ready.js'

t.test('a sidecar that cannot load its model: the probe failures and the sidecar\'s own reason', async t => {
  const c = loadCluster()
  t.same(checkSidecarsNotReady(snapshotOf(c, 'shop')), [])
  const found = checkSidecarsNotReady(snapshotOf(c, 'broken'))
  t.same(found.map(f => f.object.name), ['bad-model', 'oom'], 'pulls, volumes (ContainerCreating) and finished pods are other findings or none')
  t.match(found[0], {
    code: 'OSD_SIDECAR_NOT_READY',
    severity: 'error',
    problem: /running since .* but not ready; kubelet: Startup probe failed: HTTP probe failed with statuscode: 503 \(118 times\); the sidecar says: model 'no-such-model': no directory 'no-such-model' in the model repository/,
    fix: /put the model on the model volume .*kubectl logs bad-model -c onnx-sidecar -n broken/
  })
})

t.test('OOMKilled: restarts, the last termination, and the memory limit as the fix', async t => {
  const found = checkSidecarsNotReady(snapshotOf(loadCluster(), 'broken'))
  t.match(found[1], { object: { name: 'oom' }, problem: /waiting \(CrashLoopBackOff: .*\); 4 restarts; last terminated: OOMKilled, exit code 137/, fix: /raise onnx-sidecar.io\/memory-limit/ })
})

t.test('running, not ready, nothing reported yet: still loading, a warning', async t => {
  const c = loadCluster()
  const p = pod(c, 'shop', 'recommender-5d8f7-abcde')
  p.status.initContainerStatuses[0].ready = false
  t.match(checkSidecarsNotReady(snapshotOf(c, 'shop')), [{ severity: 'warning', problem: /probably still loading/, fix: /wait for the startup probe/ }])
  p.status.initContainerStatuses[0].state = { terminated: { reason: 'Error', exitCode: 2 } }
  t.match(checkSidecarsNotReady(snapshotOf(c, 'shop')), [{ severity: 'error', problem: /terminated \(Error, exit code 2\)/, fix: /read the sidecar's log/ }])
})

t.test('the log\'s reasons: JSON lines with msg "model cannot be loaded", the latest per model', async t => {
  const line = (model: string, reason: string) => JSON.stringify({ level: 50, model, reason, msg: 'model cannot be loaded' })
  t.same(modelLoadReasons([line('a', 'old'), 'model cannot be loaded, but not JSON', line('b', 'x'), line('a', 'new'), JSON.stringify({ msg: 'other', reason: 'model cannot be loaded' })].join('\n')), ["model 'a': new", "model 'b': x"])
  t.same(modelLoadReasons(undefined), [])
})

t.test('states with parts left out: "no reason", exit code "?", time "?", one restart, a probe failure seen once', async t => {
  const c = loadCluster()
  const p = pod(c, 'shop', 'recommender-5d8f7-abcde')
  const st = p.status.initContainerStatuses[0]
  st.ready = false
  const problem = (): string => checkSidecarsNotReady(snapshotOf(c, 'shop'))[0]?.problem ?? ''
  st.state = { waiting: {} }
  t.equal(problem(), 'the onnx-sidecar container is waiting (no reason)')
  st.state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off 5m0s restarting failed container ${'x'.repeat(300)}` } }
  t.match(problem(), /^the onnx-sidecar container is waiting \(CrashLoopBackOff: back-off 5m0s restarting failed container x+…\)$/, 'a long message is cut')
  t.ok(problem().length < 220)
  st.state = { terminated: {} }
  st.restartCount = 1
  st.lastState = { terminated: {} }
  t.equal(problem(), 'the onnx-sidecar container is terminated (no reason, exit code ?); 1 restart; last terminated: no reason, exit code ?')
  st.state = { running: {} }
  st.restartCount = 0
  st.lastState = {}
  c.events.push({ metadata: { name: 'probe', namespace: 'shop' }, involvedObject: { kind: 'Pod', name: 'recommender-5d8f7-abcde' }, reason: 'Unhealthy', type: 'Warning', count: 1, message: 'Readiness probe failed: HTTP probe failed with statuscode: 503', lastTimestamp: '2026-05-31T00:00:00Z' })
  t.equal(problem(), 'the onnx-sidecar container is running since ? but not ready; kubelet: Readiness probe failed: HTTP probe failed with statuscode: 503', 'not "still loading": the kubelet has reported')
  st.state = { running: { startedAt: 'yesterday' } }
  t.match(problem(), /^the onnx-sidecar container is running since yesterday but not ready/, 'a time that does not parse is shown as given')
})

t.test('a sidecar still being created, or pulling its image, is not "not ready" (other findings or none)', async t => {
  const c = loadCluster()
  const st = pod(c, 'shop', 'recommender-5d8f7-abcde').status.initContainerStatuses[0]
  st.ready = false
  for (const reason of ['ContainerCreating', 'PodInitializing', 'ErrImagePull']) {
    st.state = { waiting: { reason } }
    t.same(checkSidecarsNotReady(snapshotOf(c, 'shop')), [], reason)
  }
})
