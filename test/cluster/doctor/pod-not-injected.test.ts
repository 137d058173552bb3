import t from 'tap'
import { loadCluster, snapshotOf, pod } from '../../fixtures/doctor/cluster.js'
import { checkPodsNotInjected } from '../../../cluster/doctor/checks/pod-not-injected.js'

const names = (fs: Array<{ object: { name: string } }>) => fs.map(f => f.object.name)

t.test('pods created before the webhook, and a copied status record', async t => {
  const c = loadCluster()
  t.same(checkPodsNotInjected(snapshotOf(c, 'shop')), [])
  const found = checkPodsNotInjected(snapshotOf(c, 'broken'))
  t.same(names(found), ['early', 'copied-status'], 'opted-out and injected pods are not reported')
  t.match(found[0], { code: 'OSD_POD_CREATED_BEFORE_WEBHOOK', severity: 'error', object: { kind: 'Pod', namespace: 'broken', name: 'early' }, problem: /created \(2026-04-20T08:00:00Z\) before the webhook was registered \(2026-05-01T00:00:00Z\)/, fix: /kubectl delete pod early -n broken/ })
  t.match(found[1], { code: 'OSD_POD_NOT_INJECTED', problem: /carries onnx-sidecar.io\/status but has no onnx-sidecar container/ })
})

t.test('a Deployment\'s pod is restarted through its Deployment', async t => {
  const c = loadCluster()
  const p = pod(c, 'shop', 'recommender-5d8f7-abcde')
  delete p.metadata.annotations['onnx-sidecar.io/status']
  p.spec.initContainers = []
  p.metadata.creationTimestamp = '2026-04-01T00:00:00Z'
  t.match(checkPodsNotInjected(snapshotOf(c, 'shop')), [{ code: 'OSD_POD_CREATED_BEFORE_WEBHOOK', fix: 'kubectl rollout restart deployment/recommender -n shop' }])
  p.metadata.creationTimestamp = '2026-05-10T00:00:00Z'
  t.match(checkPodsNotInjected(snapshotOf(c, 'shop')), [{ code: 'OSD_POD_NOT_INJECTED', problem: /neither the webhook's selectors nor its registration time explain it/ }])
  c.mutatingWebhookConfigurations[0].webhooks[0].failurePolicy = 'Ignore'
  t.match(checkPodsNotInjected(snapshotOf(c, 'shop')), [{ problem: /failurePolicy Ignore admitted it without one/ }])
  c.mutatingWebhookConfigurations[0].webhooks[0].objectSelector = { matchLabels: { 'onnx-sidecar.io/enabled': 'true' } }
  t.match(checkPodsNotInjected(snapshotOf(c, 'shop')), [{ problem: /objectSelector does not match the pod's labels \(onnx-sidecar.io\/enabled=true does not hold\)/ }])
})

t.test('no webhook at all, or an excluded namespace: left to those findings', async t => {
  const c = loadCluster()
  c.mutatingWebhookConfigurations = []
  t.same(checkPodsNotInjected(snapshotOf(c, 'broken')), [])
  t.same(checkPodsNotInjected(snapshotOf(loadCluster(), 'optout')), [])
})

t.test('the re-create hint follows the owner: a bare ReplicaSet or a Job re-creates the pod itself', async t => {
  const c = loadCluster()
  const p = pod(c, 'shop', 'recommender-5d8f7-abcde')
  delete p.metadata.annotations['onnx-sidecar.io/status']
  p.spec.initContainers = []
  p.metadata.creationTimestamp = '2026-04-01T00:00:00Z'
  c.replicaSets = []
  t.match(checkPodsNotInjected(snapshotOf(c, 'shop')), [{ fix: 'delete the pod (kubectl delete pod recommender-5d8f7-abcde -n shop); replicaset/recommender-5d8f7 creates a new one' }], 'its Deployment is not known')
  p.metadata.ownerReferences = [{ kind: 'Job', name: 'nightly' }]
  t.match(checkPodsNotInjected(snapshotOf(c, 'shop')), [{ fix: 'delete the pod (kubectl delete pod recommender-5d8f7-abcde -n shop); job/nightly creates a new one' }])
  delete p.metadata.creationTimestamp
  t.match(checkPodsNotInjected(snapshotOf(c, 'shop')), [{ code: 'OSD_POD_NOT_INJECTED' }], 'no creation time: not said to be before the webhook')
  c.mutatingWebhookConfigurations[0].metadata.creationTimestamp = 'not a time'
  p.metadata.creationTimestamp = '2026-04-01T00:00:00Z'
  t.match(checkPodsNotInjected(snapshotOf(c, 'shop')), [{ code: 'OSD_POD_NOT_INJECTED' }], 'no registration time: not said either')
})
