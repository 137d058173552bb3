import t from 'tap'
import { loadCluster, snapshotOf, pod } from '../../fixtures/doctor/cluster.js'
import { checkModelVolumes } from '../../../cluster/doctor/checks/model-volume.js'

t.test('the claim behind the sidecar\'s /models: missing or not Bound', async t => {
  const c = loadCluster()
  t.same(checkModelVolumes(snapshotOf(c, 'shop')), [])
  t.match(checkModelVolumes(snapshotOf(c, 'broken')), [
    { code: 'OSD_MODEL_VOLUME_MISSING', severity: 'error', object: { kind: 'PersistentVolumeClaim', namespace: 'broken', name: 'missing-models' }, problem: 'the model volume\'s claim missing-models does not exist in namespace broken: pod no-pvc cannot start' },
    { code: 'OSD_MODEL_VOLUME_PENDING', object: { name: 'slow-models' }, problem: /is Pending, not Bound: pod pending-pvc cannot start/, fix: /kubectl describe pvc slow-models -n broken/ }
  ])
  t.equal(checkModelVolumes(snapshotOf(c, 'broken')).length, 2)
})

t.test('one finding per claim, naming its pods; only the sidecar\'s /models mount counts', async t => {
  const c = loadCluster()
  c.persistentVolumeClaims = c.persistentVolumeClaims.filter(p => p.metadata.namespace !== 'shop')
  const p = pod(c, 'shop', 'recommender-5d8f7-abcde')
  c.pods.push({ ...structuredClone(p), metadata: { ...p.metadata, name: 'recommender-5d8f7-fghij' } })
  t.match(checkModelVolumes(snapshotOf(c, 'shop')), [{ code: 'OSD_MODEL_VOLUME_MISSING', problem: /2 pods recommender-5d8f7-abcde, recommender-5d8f7-fghij cannot start/ }])
  p.spec.initContainers[0].volumeMounts[0].mountPath = '/elsewhere'
  c.pods.pop()
  t.same(checkModelVolumes(snapshotOf(c, 'shop')), [])
  const unreadable = snapshotOf(c, 'broken')
  delete unreadable.pvcs
  t.same(checkModelVolumes(unreadable), [], 'claims that could not be read are not called missing')
})

t.test('more than five pods on one claim: five named, then "…"; a claim with no phase is "not bound"', async t => {
  const c = loadCluster()
  const p = pod(c, 'shop', 'recommender-5d8f7-abcde')
  for (let i = 1; i <= 6; i++) c.pods.push({ ...structuredClone(p), metadata: { ...p.metadata, name: `recommender-5d8f7-${i}` } })
  const claim = c.persistentVolumeClaims.find(x => x.metadata.namespace === 'shop')
  delete claim.status
  t.match(checkModelVolumes(snapshotOf(c, 'shop')), [{ code: 'OSD_MODEL_VOLUME_PENDING', problem: 'the model volume\'s claim onnx-sidecar-models is not bound, not Bound: 7 pods recommender-5d8f7-abcde, recommender-5d8f7-1, recommender-5d8f7-2, recommender-5d8f7-3, recommender-5d8f7-4, … cannot start' }])
})
