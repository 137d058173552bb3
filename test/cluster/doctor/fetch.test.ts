/**
 * What doctor reads through the API (cluster/doctor/fetch.ts), seen from the command: lists
 * it may not read, API servers that answer oddly, one pod and what it belongs to.
 */
import t from 'tap'
import { loadCluster, NOW } from '../../fixtures/doctor/cluster.js'
import { startFakeApi, type Answer } from '../../fixtures/doctor/fake-api-server.js'
import { runDoctor } from '../../../cluster/doctor/doctor-command.js'

async function run (argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await runDoctor(argv, { stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } }, env: {}, now: NOW })
  return { code, stdout, stderr }
}

const status = (code: number, message: string): Answer => ({ status: code, body: JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, code }) })

type Found = { code: string, severity: string, object: { kind: string, name: string, namespace?: string }, problem: string, fix: string }

t.test('every namespaced list forbidden: one OSD_CANNOT_READ warning each, no check guesses, exit 0', async t => {
  const kinds = ['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'Event', 'PersistentVolumeClaim']
  const api = await startFakeApi(loadCluster(), { forbidden: kinds })
  t.teardown(api.close)
  const r = await run(['-n', 'broken', '-o', 'json', '--kubeconfig', api.kubeconfig])
  t.equal(r.stderr, '')
  const out = JSON.parse(r.stdout) as { findings: Found[], checked: string[] }
  t.same(out.findings.map(f => `${f.code} ${f.severity} ${f.object.kind} ${f.object.namespace ?? ''}/${f.object.name}`), kinds.map(k => `OSD_CANNOT_READ warning ${k} broken/*`))
  t.match(out.findings[0], { problem: /^could not read Pod: pods is forbidden: User "doctor" cannot list resource "pods" \(HTTP 403\); the checks that need it did not run$/, fix: 'run doctor with credentials that may list Pod (kubectl auth can-i list pod -n broken)' })
  t.same(out.checked, ['MutatingWebhookConfiguration onnx-sidecar', 'Namespace broken'], 'only what could be read was checked')
  t.equal(r.code, 0, 'warnings only')
})

t.test('an API server error that is not JSON, and one without a message: the HTTP code is the reason', async t => {
  const api = await startFakeApi(loadCluster(), {
    answer: r => r.startsWith('GET /apis/apps/v1/namespaces/shop/deployments')
      ? { status: 503, body: 'etcdserver: request timed out', type: 'text/plain' }
      : r.startsWith('GET /apis/batch/v1/namespaces/shop/jobs') ? { status: 500, body: '{"kind":"Status"}' } : undefined
  })
  t.teardown(api.close)
  const r = await run(['-n', 'shop', '-o', 'json', '--kubeconfig', api.kubeconfig])
  const findings = (JSON.parse(r.stdout) as { findings: Found[] }).findings
  t.same(findings.map(f => [f.object.kind, f.problem]), [
    ['Deployment', 'could not read Deployment: HTTP 503; the checks that need it did not run'],
    ['Job', 'could not read Job: HTTP 500; the checks that need it did not run']
  ])
  t.equal(r.code, 0)
})

t.test('/version answers anyone, the rest refuses the credentials: exit 2 with one line', async t => {
  const api = await startFakeApi(loadCluster(), { answer: r => r.startsWith('GET /version') ? undefined : status(401, 'Unauthorized') })
  t.teardown(api.close)
  t.same(await run(['-n', 'shop', '--kubeconfig', api.kubeconfig]), { code: 2, stdout: '', stderr: 'onnx-sidecar doctor: the API server rejected the credentials (HTTP 401): check the kubeconfig user\'s token, certificate or exec plugin\n' })
})

t.test('one pod doctor may not get: exit 2 naming the pod and the API server\'s reason', async t => {
  const api = await startFakeApi(loadCluster(), { answer: r => r.startsWith('GET /api/v1/namespaces/shop/pods/plain') ? status(403, 'pods "plain" is forbidden: User "doctor" cannot get resource "pods"') : undefined })
  t.teardown(api.close)
  t.same(await run(['plain', '-n', 'shop', '--kubeconfig', api.kubeconfig]), { code: 2, stdout: '', stderr: 'onnx-sidecar doctor: cannot read pod plain in namespace shop: pods "plain" is forbidden: User "doctor" cannot get resource "pods" (HTTP 403)\n' })
})

t.test('one pod of a Deployment: its ReplicaSet and Deployment are checked, other workloads are not', async t => {
  const api = await startFakeApi(loadCluster())
  t.teardown(api.close)
  const r = await run(['recommender-5d8f7-abcde', '-n', 'shop', '--kubeconfig', api.kubeconfig])
  t.same(r, { code: 0, stdout: 'onnx-sidecar doctor: pod shop/recommender-5d8f7-abcde: nothing wrong (checked 5 objects)\n', stderr: '' })
  const json = JSON.parse((await run(['recommender-5d8f7-abcde', '-n', 'shop', '-o', 'json', '--kubeconfig', api.kubeconfig])).stdout) as { checked: string[] }
  t.same(json.checked, ['MutatingWebhookConfiguration onnx-sidecar', 'Namespace shop', 'Deployment shop/recommender', 'ReplicaSet shop/recommender-5d8f7', 'Pod shop/recommender-5d8f7-abcde'])
})

t.test('a webhook called by URL: no EndpointSlice to read; --release-namespace leaves out other releases\' webhooks', async t => {
  const c = loadCluster()
  c.mutatingWebhookConfigurations[0].webhooks[0].clientConfig = { url: 'https://injector.example/mutate' }
  const api = await startFakeApi(c)
  t.teardown(api.close)
  const r = await run(['-n', 'shop', '--kubeconfig', api.kubeconfig])
  t.same(r, { code: 0, stdout: 'onnx-sidecar doctor: namespace shop: nothing wrong (checked 6 objects)\n', stderr: '' })
  t.notOk(api.requests.some(q => q.includes('endpointslices')), 'no Service, nothing to look up')

  const other = await startFakeApi(loadCluster())
  t.teardown(other.close)
  const elsewhere = JSON.parse((await run(['-n', 'shop', '--release-namespace', 'elsewhere', '-o', 'json', '--kubeconfig', other.kubeconfig])).stdout) as { findings: Found[] }
  t.match(elsewhere.findings, [{ code: 'OSD_WEBHOOK_NOT_REGISTERED', problem: /with its Service in namespace elsewhere/ }])
  t.notOk(other.requests.some(q => q.includes('endpointslices')), 'the other release\'s Service is not looked at')
})

t.test('a sidecar log that cannot be read: the other evidence stands', async t => {
  const c = loadCluster()
  c.logs = {}
  const api = await startFakeApi(c)
  t.teardown(api.close)
  const r = await run(['bad-model', '-n', 'broken', '-o', 'json', '--kubeconfig', api.kubeconfig])
  const findings = (JSON.parse(r.stdout) as { findings: Found[] }).findings
  const notReady = findings.find(f => f.code === 'OSD_SIDECAR_NOT_READY')
  t.match(notReady, { severity: 'error', problem: /Startup probe failed/, fix: /^read the sidecar's log: kubectl logs bad-model -c onnx-sidecar -n broken$/ })
  t.notMatch(notReady?.problem ?? '', /the sidecar says/)
  t.equal(r.code, 1)
})
