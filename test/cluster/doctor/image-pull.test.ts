import t from 'tap'
import { loadCluster, snapshotOf, pod } from '../../fixtures/doctor/cluster.js'
import { checkImagePulls } from '../../../cluster/doctor/checks/image-pull.js'

t.test('the sidecar\'s image and the model image of an image volume', async t => {
  const c = loadCluster()
  t.same(checkImagePulls(snapshotOf(c, 'shop')), [])
  const found = checkImagePulls(snapshotOf(c, 'broken'))
  t.equal(found.length, 2)
  t.match(found[0], { code: 'OSD_IMAGE_PULL_FAILED', severity: 'error', object: { name: 'pull-sidecar' }, problem: /^the sidecar cannot start: ImagePullBackOff for image registry.example\/onnx-sidecar:nope: Failed to pull image .*not found$/, fix: /sidecar.image.repository/ })
  t.match(found[1], { object: { name: 'image-pull' }, problem: /^the model image 127.0.0.1:5000\/models\/iris:missing \(volume 'onnx-sidecar-model-image'\) cannot be pulled: Failed to pull image/, fix: /onnx-sidecar.io\/model-image/ })
})

t.test('an app container\'s image, in a pod that asks for a model', async t => {
  const c = loadCluster()
  const p = pod(c, 'shop', 'recommender-5d8f7-abcde')
  p.status.containerStatuses[0] = { name: 'app', ready: false, state: { waiting: { reason: 'ErrImagePull', message: 'rpc error: not found' } } }
  t.match(checkImagePulls(snapshotOf(c, 'shop')), [{ object: { name: 'recommender-5d8f7-abcde' }, problem: "container 'app' cannot start: ErrImagePull for image localhost/recommender-app:e2e: rpc error: not found", fix: /container 'app''s image name/ }])
  const plain = pod(c, 'shop', 'plain')
  plain.status.containerStatuses[0] = { name: 'app', state: { waiting: { reason: 'ImagePullBackOff' } } }
  t.equal(checkImagePulls(snapshotOf(c, 'shop')).length, 1, 'pods that have nothing to do with onnx-sidecar are not ours to report')
})

t.test('a status without its container in the spec, no message and no event: the image from the status, no detail', async t => {
  const c = loadCluster()
  const p = pod(c, 'shop', 'recommender-5d8f7-abcde')
  p.status.containerStatuses.push({ name: 'helper', image: 'registry.example/helper:1', state: { waiting: { reason: 'InvalidImageName' } } })
  t.match(checkImagePulls(snapshotOf(c, 'shop')), [{ problem: "container 'helper' cannot start: InvalidImageName for image registry.example/helper:1" }])
})

t.test('a model image that fails again and again is reported once, from the latest event', async t => {
  const c = loadCluster()
  const failing = checkImagePulls(snapshotOf(c, 'broken')).filter(f => /model image/.test(f.problem))
  const again = loadCluster()
  const e = again.events.find(x => x.involvedObject?.name === 'image-pull' && /pull image/i.test(x.message ?? ''))
  again.events.push({ ...structuredClone(e), metadata: { name: 'later', namespace: 'broken' }, lastTimestamp: '2026-06-01T00:00:00Z', message: `${e.message as string} (again)` })
  const twice = checkImagePulls(snapshotOf(again, 'broken')).filter(f => /model image/.test(f.problem))
  t.equal(failing.length, 1)
  t.equal(twice.length, 1, 'one finding per image')
  t.match(twice[0]?.problem, /\(again\)$/, 'the latest event\'s words')
})
