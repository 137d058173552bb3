import t from 'tap'
import { loadCluster, snapshotOf, NOW } from '../../fixtures/doctor/cluster.js'
import { checkWebhookRegistration } from '../../../cluster/doctor/checks/webhook-registration.js'
import { checkWebhookCaBundle } from '../../../cluster/doctor/checks/webhook-ca-bundle.js'
import { checkWebhookEndpoints } from '../../../cluster/doctor/checks/webhook-endpoints.js'

t.test('registration: the chart\'s webhook is found by its name, in any configuration', async t => {
  const c = loadCluster()
  t.same(checkWebhookRegistration(snapshotOf(c, 'shop')), [])
  c.mutatingWebhookConfigurations[0].metadata.name = 'renamed-release'
  t.same(checkWebhookRegistration(snapshotOf(c, 'shop')), [], 'the configuration is named after the release; the webhook is not')
  c.mutatingWebhookConfigurations = []
  const [f, ...rest] = checkWebhookRegistration(snapshotOf(c, 'shop'))
  t.same(rest, [])
  t.match(f, { code: 'OSD_WEBHOOK_NOT_REGISTERED', severity: 'error', object: { kind: 'MutatingWebhookConfiguration', name: 'inject.onnx-sidecar.io' }, fix: /helm install onnx-sidecar/ })
})

t.test('registration: --release-namespace counts only the webhook whose Service lives there', async t => {
  const c = loadCluster()
  t.same(checkWebhookRegistration(snapshotOf(c, 'shop', { releaseNamespace: 'onnx-sidecar' })), [])
  t.match(checkWebhookRegistration(snapshotOf(c, 'shop', { releaseNamespace: 'elsewhere' })), [{ code: 'OSD_WEBHOOK_NOT_REGISTERED', problem: /Service in namespace elsewhere/ }])
  const unreadable = snapshotOf(c, 'shop')
  delete unreadable.webhookConfigurations
  t.same(checkWebhookRegistration(unreadable), [], 'an unreadable list is OSD_CANNOT_READ, not a missing webhook')
})

t.test('caBundle: valid, expiring within 30 days, expired, not yet valid, not PEM, empty', async t => {
  const c = loadCluster()
  t.same(checkWebhookCaBundle(snapshotOf(c, 'shop')), [], 'the CA is valid 2026-01-01 to 2027-01-01; now is 2026-06-01')
  t.match(checkWebhookCaBundle(snapshotOf(c, 'shop', { now: new Date('2026-12-10T00:00:00Z') })), [{ code: 'OSD_WEBHOOK_CA_EXPIRING', severity: 'warning', problem: /CN=onnx-sidecar-ca.*expires on 2027-01-01T00:00:00Z, in 22 days/ }])
  t.same(checkWebhookCaBundle(snapshotOf(c, 'shop', { now: new Date('2026-12-01T00:00:00Z') })), [], '31 days before expiry: nothing yet')
  t.match(checkWebhookCaBundle(snapshotOf(c, 'shop', { now: new Date('2027-01-02T00:00:00Z') })), [{ code: 'OSD_WEBHOOK_CA_EXPIRED', severity: 'error', problem: /expired on 2027-01-01/ }])
  t.match(checkWebhookCaBundle(snapshotOf(c, 'shop', { now: new Date('2025-12-01T00:00:00Z') })), [{ code: 'OSD_WEBHOOK_CA_EXPIRED', problem: /not valid before 2026-01-01/ }])
  const hook = c.mutatingWebhookConfigurations[0].webhooks[0]
  hook.clientConfig.caBundle = Buffer.from('-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n').toString('base64')
  t.match(checkWebhookCaBundle(snapshotOf(c, 'shop')), [{ code: 'OSD_WEBHOOK_CA_INVALID', severity: 'error', object: { kind: 'MutatingWebhookConfiguration', name: 'onnx-sidecar' }, problem: /not a PEM certificate/ }])
  hook.clientConfig.caBundle = ''
  t.match(checkWebhookCaBundle(snapshotOf(c, 'shop')), [{ code: 'OSD_WEBHOOK_CA_INVALID', problem: /no caBundle/ }])
  hook.clientConfig = { url: 'https://injector.example/mutate' }
  t.same(checkWebhookCaBundle(snapshotOf(c, 'shop')), [], 'a URL webhook may be trusted through the API server\'s own roots')
  t.equal(NOW.toISOString(), '2026-06-01T00:00:00.000Z')
})

t.test('endpoints: the Service needs a ready endpoint; a URL webhook has no Service', async t => {
  const c = loadCluster()
  t.same(checkWebhookEndpoints(snapshotOf(c, 'shop')), [])
  c.endpointSlices[0].endpoints[0].conditions.ready = false
  t.match(checkWebhookEndpoints(snapshotOf(c, 'shop')), [{ code: 'OSD_WEBHOOK_NO_ENDPOINTS', severity: 'error', object: { kind: 'Service', namespace: 'onnx-sidecar', name: 'onnx-sidecar' }, problem: /no ready endpoints: annotated pods are refused \(failurePolicy Fail\)/, fix: /kubectl -n onnx-sidecar get pods/ }])
  c.endpointSlices = []
  c.mutatingWebhookConfigurations[0].webhooks[0].failurePolicy = 'Ignore'
  t.match(checkWebhookEndpoints(snapshotOf(c, 'shop')), [{ code: 'OSD_WEBHOOK_NO_ENDPOINTS', problem: /admitted without a sidecar \(failurePolicy Ignore\)/ }])
  c.mutatingWebhookConfigurations[0].webhooks[0].clientConfig = { url: 'https://127.0.0.1:8443/mutate' }
  t.same(checkWebhookEndpoints(snapshotOf(c, 'shop')), [])
})

t.test('endpoints: an EndpointSlice list doctor could not read says nothing; a slice with no endpoints has none ready', async t => {
  const c = loadCluster()
  const s = snapshotOf(c, 'shop')
  s.endpointSlices = {}
  t.same(checkWebhookEndpoints(s), [], 'unreadable: OSD_CANNOT_READ says so')
  delete c.endpointSlices[0].endpoints
  t.match(checkWebhookEndpoints(snapshotOf(c, 'shop')), [{ code: 'OSD_WEBHOOK_NO_ENDPOINTS' }])
})

t.test('--release-namespace: of two releases\' webhooks only the one whose Service lives there is checked', async t => {
  const c = loadCluster()
  const other = structuredClone(c.mutatingWebhookConfigurations[0])
  other.metadata.name = 'staging'
  other.webhooks[0].clientConfig.service.namespace = 'staging'
  other.webhooks[0].clientConfig.caBundle = ''
  c.mutatingWebhookConfigurations.push(other)
  t.match(checkWebhookCaBundle(snapshotOf(c, 'shop')), [{ object: { name: 'staging' }, code: 'OSD_WEBHOOK_CA_INVALID' }], 'without it, every release counts')
  t.same(checkWebhookCaBundle(snapshotOf(c, 'shop', { releaseNamespace: 'onnx-sidecar' })), [])
  t.same(checkWebhookRegistration(snapshotOf(c, 'shop', { releaseNamespace: 'staging' })), [])
})
