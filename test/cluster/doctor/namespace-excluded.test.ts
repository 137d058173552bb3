import t from 'tap'
import { loadCluster, snapshotOf } from '../../fixtures/doctor/cluster.js'
import { checkNamespaceExcluded } from '../../../cluster/doctor/checks/namespace-excluded.js'
import { checkPodsNotInjected } from '../../../cluster/doctor/checks/pod-not-injected.js'

t.test('the chart\'s opt-out label excludes a namespace that asks for models', async t => {
  const c = loadCluster()
  t.same(checkNamespaceExcluded(snapshotOf(c, 'shop')), [])
  t.match(checkNamespaceExcluded(snapshotOf(c, 'optout')), [{
    code: 'OSD_NAMESPACE_EXCLUDED',
    severity: 'error',
    object: { kind: 'Namespace', name: 'optout' },
    problem: /onnx-sidecar.io\/injection NotIn \(disabled\) does not hold\), so 2 pod\(s\) or template\(s\)/,
    fix: /kubectl label namespace optout onnx-sidecar.io\/injection-/
  }])
  t.same(checkPodsNotInjected(snapshotOf(c, 'optout')), [], 'its pods are not reported again one by one')
})

t.test('the release namespace and kube-system are excluded by name; nothing to say when nothing asks', async t => {
  const c = loadCluster()
  const ns = c.namespaces.find(n => n.metadata.name === 'onnx-sidecar')
  delete ns.metadata.labels // the API server's kubernetes.io/metadata.name is assumed
  t.same(checkNamespaceExcluded(snapshotOf(c, 'onnx-sidecar')), [], 'nothing there asks for a model')
  c.pods.push({ metadata: { name: 'x', namespace: 'onnx-sidecar', annotations: { 'onnx-sidecar.io/model': 'iris' } } })
  t.match(checkNamespaceExcluded(snapshotOf(c, 'onnx-sidecar')), [{ code: 'OSD_NAMESPACE_EXCLUDED', problem: /kubernetes.io\/metadata.name NotIn/, fix: /never injects in kube-system/ }])
  c.mutatingWebhookConfigurations[0].webhooks[0].namespaceSelector = { matchLabels: { 'ml-team': 'yes' } }
  t.match(checkNamespaceExcluded(snapshotOf(c, 'shop')), [{ problem: /ml-team=yes/, fix: /namespaceSelectorExpressions/ }])
})
