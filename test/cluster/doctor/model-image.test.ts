import t from 'tap'
import { loadCluster, snapshotOf } from '../../fixtures/doctor/cluster.js'
import { checkModelImages } from '../../../cluster/doctor/checks/model-image.js'

t.test('an injected pod whose image volume lost its image: the gate is off', async t => {
  const c = loadCluster()
  t.same(checkModelImages(snapshotOf(c, 'shop')), [])
  t.match(checkModelImages(snapshotOf(c, 'broken')), [{ code: 'OSD_IMAGE_VOLUME_UNSUPPORTED', severity: 'error', object: { name: 'image-dropped' }, problem: /dropped the image source of volume onnx-sidecar-model-image/, fix: /Kubernetes 1.35 or later.*ImageVolume feature gate/ }])
  t.equal(checkModelImages(snapshotOf(c, 'broken')).length, 1, 'a pull failure of a present image volume is not this')
})

t.test('by version: none before 1.31 (error), off by default before 1.35 (warning)', async t => {
  const c = loadCluster()
  c.deployments.push({ metadata: { name: 'img', namespace: 'shop' }, spec: { template: { metadata: { annotations: { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/model-image': 'r/m@sha256:00' } } } } })
  t.same(checkModelImages(snapshotOf(c, 'shop')), [], '1.36')
  c.version = { major: '1', minor: '33+', gitVersion: 'v1.33.4-eks-1' }
  t.match(checkModelImages(snapshotOf(c, 'shop')), [{ severity: 'warning', object: { kind: 'Deployment', name: 'img' }, problem: /off by default in Kubernetes v1.33.4-eks-1/ }])
  c.version = { major: '1', minor: '30', gitVersion: 'v1.30.2' }
  t.match(checkModelImages(snapshotOf(c, 'shop')), [{ severity: 'error', problem: /Kubernetes v1.30.2 does not have/ }])
  c.version = undefined
  t.same(checkModelImages(snapshotOf(c, 'shop')), [], 'unknown version: nothing said')
})

t.test('a kubelet event about the image volume is evidence whatever the version', async t => {
  const c = loadCluster()
  const p = c.pods.find(x => x.metadata.name === 'image-pull')
  p.metadata.namespace = 'shop'
  c.events.push({ metadata: { name: 'e', namespace: 'shop' }, involvedObject: { kind: 'Pod', name: 'image-pull' }, type: 'Warning', reason: 'Failed', message: 'Error: failed to create containerd container: image volumes are not supported by this runtime', lastTimestamp: '2026-05-31T00:00:00Z' })
  t.match(checkModelImages(snapshotOf(c, 'shop')), [{ severity: 'error', object: { name: 'image-pull' }, problem: /kubelet: Error: failed to create containerd container: image volumes are not supported/ }])
})

t.test('a version without gitVersion is named by major.minor', async t => {
  const c = loadCluster()
  c.deployments.push({ metadata: { name: 'img', namespace: 'shop' }, spec: { template: { metadata: { annotations: { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/model-image': 'r/m@sha256:00' } } } } })
  c.version = { major: '1', minor: '30' }
  t.match(checkModelImages(snapshotOf(c, 'shop')), [{ severity: 'error', object: { kind: 'Deployment', name: 'img' }, problem: /which Kubernetes 1.30 does not have/ }])
  c.version = { major: '1' }
  t.same(checkModelImages(snapshotOf(c, 'shop')), [], 'no minor: the version is unknown, nothing said')
})
