import t from 'tap'
import { loadCluster, snapshotOf } from '../../fixtures/doctor/cluster.js'
import { checkWorkloadAnnotations } from '../../../cluster/doctor/checks/workload-annotations.js'

t.test('annotations on the Deployment\'s metadata instead of its pod template', async t => {
  const c = loadCluster()
  t.same(checkWorkloadAnnotations(snapshotOf(c, 'shop')), [])
  const found = checkWorkloadAnnotations(snapshotOf(c, 'broken'))
  t.match(found, [
    { code: 'OSD_ANNOTATION_ON_WORKLOAD', severity: 'error', object: { kind: 'Deployment', namespace: 'broken', name: 'on-metadata' }, problem: /onnx-sidecar.io\/model is on the Deployment's own metadata, and its pod template has no onnx-sidecar.io\/model/, fix: /spec.template.metadata.annotations/ },
    { code: 'OSD_ANNOTATION_ON_WORKLOAD', severity: 'warning', object: { name: 'half-moved' }, problem: /onnx-sidecar.io\/memory-limit is on the Deployment's own metadata.*ignores it/ }
  ])
  t.equal(found.length, 2, 'ReplicaSets (which copy the Deployment\'s annotations) and other annotations are not reported')
})

t.test('StatefulSets, DaemonSets and Jobs too; an annotation on both is fine', async t => {
  const c = loadCluster()
  const wl = (name: string, meta: object, tmpl: object) => ({ metadata: { name, namespace: 'shop', annotations: meta }, spec: { template: { metadata: { annotations: tmpl } } } })
  c.statefulSets.push(wl('db', { 'onnx-sidecar.io/model': 'iris' }, {}))
  c.daemonSets.push(wl('edge', { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/cpu': '1' }, { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/cpu': '1' }))
  c.jobs.push(wl('batch', { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/port': '9000' }, {}))
  t.match(checkWorkloadAnnotations(snapshotOf(c, 'shop')), [
    { object: { kind: 'StatefulSet', name: 'db' }, severity: 'error' },
    { object: { kind: 'Job', name: 'batch' }, severity: 'error', problem: /onnx-sidecar.io\/model, onnx-sidecar.io\/port are on the Job's own metadata/ }
  ])
})

t.test('several annotations left behind on a workload that is injected anyway: a warning naming them all', async t => {
  const c = loadCluster()
  c.deployments.push({ metadata: { name: 'two', namespace: 'shop', annotations: { 'onnx-sidecar.io/cpu': '1', 'onnx-sidecar.io/memory-limit': '1Gi', 'onnx-sidecar.io/status': '{}' } }, spec: { template: { metadata: { annotations: { 'onnx-sidecar.io/model': 'iris' } } } } })
  t.match(checkWorkloadAnnotations(snapshotOf(c, 'shop')), [{ severity: 'warning', object: { kind: 'Deployment', name: 'two' }, problem: 'onnx-sidecar.io/cpu, onnx-sidecar.io/memory-limit are on the Deployment\'s own metadata, not its pod template: the sidecar is injected but ignores them', fix: 'move them to spec.template.metadata.annotations (the pod template)' }], 'the injector\'s own status record is not a misplaced annotation')
})
