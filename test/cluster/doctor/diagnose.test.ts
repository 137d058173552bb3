import t from 'tap'
import { diagnose } from '../../../cluster/doctor/diagnose.js'
import { textReport } from '../../../cluster/doctor/report.js'
import type { Snapshot } from '../../../cluster/doctor/snapshot.js'

const STATUS = 'onnx-sidecar.io/status'

/** What an API server may hand back with most optional fields left out. */
function bare (): Snapshot {
  return {
    namespace: 'ns',
    now: new Date('2026-06-01T00:00:00Z'),
    version: {},
    webhookConfigurations: [{}, { webhooks: [{ name: 'someone-else.example' }, { name: 'inject.onnx-sidecar.io' }] }],
    endpointSlices: {},
    namespaceObject: {},
    pods: [
      {},
      { metadata: { name: 'asks', annotations: { 'onnx-sidecar.io/model': 'iris' } } },
      { metadata: { name: 'not-started', annotations: { 'onnx-sidecar.io/model': 'iris', [STATUS]: '{}' } }, spec: { containers: [{ name: 'onnx-sidecar' }] }, status: { containerStatuses: [{ name: 'onnx-sidecar', state: {} }] } },
      { metadata: { name: 'no-state', annotations: { 'onnx-sidecar.io/model': 'iris', [STATUS]: '{}' } }, spec: { containers: [{ name: 'onnx-sidecar' }] }, status: { containerStatuses: [{ name: 'onnx-sidecar' }] } }
    ],
    workloads: [{}, { kind: 'Deployment' }],
    events: [
      {},
      { involvedObject: { kind: 'ReplicaSet' }, reason: 'FailedCreate', message: 'Internal error occurred: failed calling webhook "inject.onnx-sidecar.io": dial tcp 10.0.0.1:443: connect: connection refused' }
    ],
    sidecarLogs: {},
    unreadable: [{ what: 'PersistentVolumeClaim', reason: 'HTTP 403' }]
  }
}

t.test('objects with most fields left out: every check still says something a user can act on', async t => {
  const d = diagnose(bare())
  t.same(d.findings.map(f => `${f.severity} ${f.code} ${f.object.kind} ${f.object.namespace ?? ''}/${f.object.name}`), [
    'error OSD_WEBHOOK_CA_INVALID MutatingWebhookConfiguration /(unnamed)',
    'error OSD_POD_NOT_INJECTED Pod /asks',
    'error OSD_WEBHOOK_CALL_FAILED ReplicaSet ns/(unnamed)',
    'error OSD_SIDECAR_NOT_READY Pod /not-started',
    'warning OSD_CANNOT_READ PersistentVolumeClaim ns/*'
  ])
  t.match(d.findings[1], { problem: /neither the webhook's selectors nor its registration time explain it/, fix: 'check the injector is up (its pods, its log for this pod), then delete the pod and create it again (kubectl delete pod asks, then kubectl apply it)' })
  t.equal(d.findings[2]?.problem, 'the API server could not call the injector, so pods were not created: Internal error occurred: failed calling webhook "inject.onnx-sidecar.io": dial tcp 10.0.0.1:443: connect: connection refused', 'a single event: no count, no time')
  t.match(d.findings[3], { problem: 'the onnx-sidecar container is not started', fix: 'read the sidecar\'s log: kubectl logs not-started -c onnx-sidecar -n ns' })
  t.same(d.checked, ['MutatingWebhookConfiguration (unnamed)', 'Namespace ns', 'Workload (unnamed)', 'Deployment (unnamed)', 'Pod (unnamed)', 'Pod asks', 'Pod not-started', 'Pod no-state'])
  t.match(textReport(d, 'namespace ns'), /^onnx-sidecar doctor: namespace ns: 4 errors, 1 warning \(checked 8 objects\)\n\nerror {3}OSD_WEBHOOK_CA_INVALID {2}MutatingWebhookConfiguration \(unnamed\)\n/)
})

t.test('one error, several warnings: the header counts each', async t => {
  const s = bare()
  s.pods = []
  s.events = []
  s.unreadable.push({ what: 'Event', reason: 'HTTP 403' })
  t.match(textReport(diagnose(s), 'namespace ns'), /^onnx-sidecar doctor: namespace ns: 1 error, 2 warnings \(checked 4 objects\)\n/)
})
