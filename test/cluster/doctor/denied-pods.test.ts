import t from 'tap'
import { loadCluster, snapshotOf } from '../../fixtures/doctor/cluster.js'
import { checkDeniedPods } from '../../../cluster/doctor/checks/denied-pods.js'

t.test('FailedCreate events that name the webhook: the denial quoted, or the call that failed', async t => {
  const c = loadCluster()
  t.same(checkDeniedPods(snapshotOf(c, 'shop')), [])
  const found = checkDeniedPods(snapshotOf(c, 'broken'))
  t.equal(found.length, 2, 'recovered-6b5 created a pod after its failure and is not reported')
  t.match(found[0], {
    code: 'OSD_POD_DENIED',
    severity: 'error',
    object: { kind: 'ReplicaSet', namespace: 'broken', name: 'denied-7c9d' },
    problem: 'the injector denied its pods (7 times, last 2026-05-31T23:50:00Z): annotation onnx-sidecar.io/memory-limit: "12Mi" is below the minimum 163Mi (the sidecar needs room for its fixed cost, one worker and request memory)',
    fix: /in Deployment denied's pod template/
  })
  t.match(found[1], { code: 'OSD_WEBHOOK_CALL_FAILED', object: { name: 'unreachable-4f1' }, problem: /^the API server could not call the injector, so pods were not created \(12 times.*\): Internal error occurred: failed calling webhook "inject.onnx-sidecar.io".*connection refused$/ })
})

t.test('other FailedCreate events (quota, another webhook) are not the injector\'s', async t => {
  const c = loadCluster()
  c.events = c.events.filter(e => e.reason !== 'FailedCreate')
  c.events.push({ metadata: { name: 'q', namespace: 'broken' }, involvedObject: { kind: 'ReplicaSet', name: 'denied-7c9d' }, reason: 'FailedCreate', message: 'Error creating: pods "x" is forbidden: exceeded quota', lastTimestamp: '2026-05-31T00:00:00Z' })
  c.events.push({ metadata: { name: 'p', namespace: 'broken' }, involvedObject: { kind: 'Pod', name: 'x' }, reason: 'FailedCreate', message: 'admission webhook "inject.onnx-sidecar.io" denied the request: x', lastTimestamp: '2026-05-31T00:00:00Z' })
  t.same(checkDeniedPods(snapshotOf(c, 'broken')), [])
})

t.test('the latest FailedCreate is quoted, whichever timestamp the event carries; a later SuccessfulCreate means recovered', async t => {
  const c = loadCluster()
  c.events = []
  const denied = (name: string, when: Record<string, unknown>, why: string) => ({ metadata: { name, namespace: 'shop' }, involvedObject: { kind: 'Job', name: 'nightly', namespace: 'shop' }, reason: 'FailedCreate', message: `Error creating: admission webhook "inject.onnx-sidecar.io" denied the request: ${why}`, ...when })
  // listed newest first: the order of the list does not matter, the times do
  c.events.push(denied('new', { eventTime: '2026-05-31T10:00:00.000000Z', count: 1 }, 'the new reason'))
  c.events.push(denied('old', { firstTimestamp: '2026-05-30T10:00:00Z' }, 'the old reason'))
  const [f, ...rest] = checkDeniedPods(snapshotOf(c, 'shop'))
  t.same(rest, [])
  t.match(f, { code: 'OSD_POD_DENIED', object: { kind: 'Job', namespace: 'shop', name: 'nightly' }, problem: 'the injector denied its pods: the new reason', fix: /in Job nightly's pod template/ }, 'count 1: no "times"; a Job is its own template owner')
  c.events.push({ metadata: { name: 'ok', namespace: 'shop', creationTimestamp: '2026-05-31T11:00:00Z' }, involvedObject: { kind: 'Job', name: 'nightly' }, reason: 'SuccessfulCreate' })
  t.same(checkDeniedPods(snapshotOf(c, 'shop')), [], 'created a pod after the denial (the event\'s own creation time)')
})

t.test('a ReplicaSet that is not in the snapshot is named as itself', async t => {
  const c = loadCluster()
  c.events = [{ metadata: { name: 'e', namespace: 'shop' }, involvedObject: { kind: 'ReplicaSet', name: 'gone-5f5' }, reason: 'FailedCreate', count: 3, lastTimestamp: '2026-05-31T00:00:00Z', message: 'admission webhook "inject.onnx-sidecar.io" denied the request: bad' }]
  t.match(checkDeniedPods(snapshotOf(c, 'shop')), [{ object: { kind: 'ReplicaSet', namespace: 'shop', name: 'gone-5f5' }, problem: 'the injector denied its pods (3 times, last 2026-05-31T00:00:00Z): bad', fix: /in ReplicaSet gone-5f5's pod template/ }])
})
