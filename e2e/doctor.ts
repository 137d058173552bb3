/**
 * `onnx-sidecar doctor` on the real cluster: a healthy namespace exits 0; then the setup is
 * broken in several ways at once, each by its own object (annotations on a Deployment's
 * metadata, a pod whose model claim is missing, one whose claim stays Pending, a pod whose
 * model does not exist, a pod whose sidecar image cannot be pulled, a Deployment whose pods
 * the injector denies, a pod created while the webhook configuration was deleted, a
 * namespace opted out), and `doctor -o json` must name each object with its code. The
 * webhook itself is broken one way at a time, each for a few seconds, and restored: deleted
 * (not registered), a caBundle that expires soon and did not sign the injector (pods fail
 * to be created), a caBundle that is not a certificate, and a Service with no endpoints in
 * place of the URL. Everything it breaks is restored: the webhook configuration in a
 * `finally`, the namespaces deleted at the end.
 *
 * Not broken here: image volumes unsupported. This cluster is Kubernetes 1.36 with
 * containerd 2.4: the ImageVolume gate is GA and locked to on in 1.36 (LockToDefault in
 * k8s.io/kubernetes pkg/features), so neither the API server nor the kubelet can be made to
 * refuse them; doctor's version and pod-evidence rules for older clusters are tested against
 * a stand-in API server (test/cluster/doctor).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify as toYaml } from 'yaml'
import { expect, run, runOk, waitFor } from './lib.js'
import { ROOT, ctx, baseEnv, kubectl, kubectlApply, kubectlRaw, getJson, waitForDefaultSa, type Json } from './context.js'
import { webhookConfiguration } from './injector-setup.js'
import { provideModelVolume } from './workloads/setup.js'
import { APP_IMAGE } from './images.js'
import { isReady } from './pods.js'
import { SIDECAR } from './pod-assertions.js'

const OK_NS = 'doctor-ok'
const BROKEN_NS = 'doctor-broken'
const OPTOUT_NS = 'doctor-optout'

interface Report { code: number, findings: Array<{ code: string, severity: string, object: { kind: string, name: string } }>, stderr: string }

async function doctor (...args: string[]): Promise<Report> {
  const r = await run(process.execPath, [`${ROOT}/dist/cli/main.js`, 'doctor', '-o', 'json', '--kubeconfig', ctx.kubeconfig, ...args], { env: baseEnv, timeoutMs: 60_000 })
  if (r.code === 2) throw new Error(`doctor exited 2: ${r.stderr.trim()}`)
  return { code: r.code, findings: (JSON.parse(r.stdout) as Pick<Report, 'findings'>).findings, stderr: r.stderr }
}

const has = (r: Report, code: string, name: string): boolean => r.findings.some(f => f.code === code && f.object.name === name)

function pod (name: string, annotations: Record<string, string>, extra: { containers?: Json[], volumes?: Json[], schedule?: boolean } = {}): string {
  return toYaml({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: BROKEN_NS, annotations: { 'onnx-sidecar.io/memory-limit': '256Mi', ...annotations } },
    spec: {
      // Pods that only need to be stored stay unscheduled: no node has this label.
      ...(extra.schedule === false ? { nodeSelector: { 'onnx-sidecar.io/e2e': 'never' } } : {}),
      containers: [{ name: 'app', image: APP_IMAGE, resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } } }, ...extra.containers ?? []],
      ...(extra.volumes === undefined ? {} : { volumes: extra.volumes })
    }
  })
}

function deployment (ns: string, name: string, own: Record<string, string>, template: Record<string, string>, replicas: number, schedule = true): string {
  return toYaml({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns, annotations: own },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name }, annotations: template },
        spec: {
          ...(schedule ? {} : { nodeSelector: { 'onnx-sidecar.io/e2e': 'never' } }),
          containers: [{ name: 'app', image: APP_IMAGE, resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } } }]
        }
      }
    }
  })
}

async function namespace (ns: string, labels: string[] = []): Promise<void> {
  await kubectl('create', 'namespace', ns)
  if (labels.length > 0) await kubectl('label', 'namespace', ns, ...labels)
  await waitForDefaultSa(ns)
}

/** Would an annotated pod be injected now? (A server-side dry run goes through the webhook.) */
async function injecting (): Promise<boolean> {
  const r = await kubectlRaw(['create', '--dry-run=server', '-o', 'json', '-f', '-'], pod('probe', { 'onnx-sidecar.io/model': 'iris' }, { schedule: false }))
  if (r.code !== 0) return false
  const p = JSON.parse(r.stdout) as Json
  return [...p.spec.initContainers ?? [], ...p.spec.containers ?? []].some((c: Json) => c.name === SIDECAR)
}

/** A pod created while the webhook configuration is deleted; the configuration is back (same content, new creationTimestamp) when this returns. */
async function podWithoutWebhook (name: string): Promise<void> {
  const saved = await savedConfiguration(name)
  await kubectl('delete', 'mutatingwebhookconfiguration', name)
  let failure: Error | undefined
  try {
    // The API server drops the webhook from its cache shortly after the delete.
    await waitFor('the API server to stop calling the deleted webhook', async () => !(await injecting()), { timeoutMs: 30_000, intervalMs: 250 })
    const gone = await doctor('-n', BROKEN_NS)
    expect(gone.code === 1 && has(gone, 'OSD_WEBHOOK_NOT_REGISTERED', 'inject.onnx-sidecar.io'), `doctor with the webhook configuration deleted: ${JSON.stringify(gone.findings.map(f => `${f.code} ${f.object.name}`))}`)
    await kubectlApply(pod('early', { 'onnx-sidecar.io/model': 'iris' }, { schedule: false }))
    const created = Date.parse((await getJson('pod', 'early', '-n', BROKEN_NS)).metadata.creationTimestamp)
    // creationTimestamps are whole seconds: the configuration must be created in a later one.
    await waitFor('the next second', async () => Date.now() >= created + 1000, { timeoutMs: 5000, intervalMs: 100 })
  } catch (err) {
    failure = err instanceof Error ? err : new Error(String(err))
  }
  const restored = await kubectlRaw(['create', '-f', '-'], JSON.stringify(saved))
  if (restored.code !== 0) throw new Error(`could not restore the webhook configuration ${name}: ${restored.stderr}`)
  if (failure !== undefined) throw failure
  await waitFor('the restored webhook to inject again', injecting, { timeoutMs: 30_000, intervalMs: 250 })
}

/** The configuration as stored, without the fields the API server sets. */
async function savedConfiguration (name: string): Promise<Json> {
  const saved = await getJson('mutatingwebhookconfiguration', name)
  for (const k of ['resourceVersion', 'uid', 'creationTimestamp', 'generation', 'managedFields']) delete saved.metadata[k]
  return saved
}

async function replaceConfiguration (config: Json): Promise<void> {
  const r = await kubectlRaw(['replace', '-f', '-'], JSON.stringify(config))
  if (r.code !== 0) throw new Error(`kubectl replace mutatingwebhookconfiguration: ${r.stderr.trim()}`)
}

/**
 * Breaks the webhook configuration with `change`, waits until doctor reports `code` (and
 * whatever else `also` wants), and puts the saved configuration back, whatever happened.
 */
async function brokenWebhook (name: string, what: string, change: (w: Json) => void, code: string, also: (r: Report) => boolean = () => true, during: () => Promise<void> = async () => {}): Promise<Report> {
  const saved = await savedConfiguration(name)
  const broken = structuredClone(saved)
  for (const w of broken.webhooks) if (w.name === 'inject.onnx-sidecar.io') change(w)
  let last: Report | undefined
  try {
    await replaceConfiguration(broken)
    await during()
    return await waitFor(`doctor to report ${code} (${what})`, async () => {
      last = await doctor('-n', BROKEN_NS)
      return last.findings.some(f => f.code === code) && also(last) ? last : undefined
    }, { timeoutMs: 60_000, intervalMs: 1000 })
  } catch (err) {
    throw new Error(`${(err as Error).message}; last findings: ${JSON.stringify(last?.findings.map(f => `${f.code} ${f.object.name}`))}`)
  } finally {
    await replaceConfiguration(saved)
  }
}

/** A self-signed CA valid for `days` days, base64 as a caBundle wants it. */
async function caBundle (days: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'doctor-ca-'))
  try {
    await runOk('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', String(days),
      '-subj', '/CN=doctor-e2e-expiring-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
    return readFileSync(join(dir, 'ca.crt')).toString('base64')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The webhook broken one way at a time; each line names what doctor said. */
async function breakWebhook (webhook: string): Promise<string[]> {
  const lines: string[] = []
  // A CA that expires in 10 days and did not sign the injector's certificate: a warning for
  // the CA, and the API server cannot call the injector, so a Deployment's pods are not created.
  const expiring = await caBundle(10)
  const callFailed = (f: Report['findings'][number]): boolean => f.code === 'OSD_WEBHOOK_CALL_FAILED' && f.object.name.startsWith('call-failed-')
  const ca = await brokenWebhook(webhook, 'caBundle of another CA, expiring in 10 days', w => { w.clientConfig.caBundle = expiring }, 'OSD_WEBHOOK_CA_EXPIRING',
    r => r.findings.some(callFailed),
    // Created once the API server calls the injector with the wrong CA (a server-side dry run fails then).
    async () => {
      await waitFor('the API server to use the new caBundle', async () => !(await injecting()), { timeoutMs: 30_000, intervalMs: 250 })
      await kubectlApply(deployment(BROKEN_NS, 'call-failed', {}, { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/memory-limit': '256Mi' }, 1, false))
    })
  const called = ca.findings.find(callFailed) as Report['findings'][number] & { problem?: string }
  expect(/x509|certificate/i.test(called.problem ?? ''), `OSD_WEBHOOK_CALL_FAILED does not quote the TLS error: ${called.problem ?? ''}`)
  lines.push(`OSD_WEBHOOK_CA_EXPIRING (warning) and OSD_WEBHOOK_CALL_FAILED ${called.object.name} (x509) with another CA expiring in 10 days`)
  await kubectl('delete', 'deployment', 'call-failed', '-n', BROKEN_NS, '--wait=false')

  const garbage = Buffer.from('-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n').toString('base64')
  await brokenWebhook(webhook, 'caBundle that is not a certificate', w => { w.clientConfig.caBundle = garbage }, 'OSD_WEBHOOK_CA_INVALID')
  lines.push('OSD_WEBHOOK_CA_INVALID with a caBundle that is not a certificate')

  // The chart's usual form: the webhook behind a Service; this one has no pods behind it.
  await kubectlApply(toYaml({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'injector-without-pods', namespace: BROKEN_NS }, spec: { selector: { app: 'no-such-injector' }, ports: [{ port: 443, targetPort: 8443 }] } }))
  await brokenWebhook(webhook, 'a Service with no ready endpoints', w => {
    w.clientConfig = { service: { namespace: BROKEN_NS, name: 'injector-without-pods', path: '/mutate', port: 443 }, caBundle: w.clientConfig.caBundle }
  }, 'OSD_WEBHOOK_NO_ENDPOINTS', r => has(r, 'OSD_WEBHOOK_NO_ENDPOINTS', 'injector-without-pods'))
  lines.push('OSD_WEBHOOK_NO_ENDPOINTS injector-without-pods with the webhook behind a Service without pods')
  await waitFor('the restored webhook to inject again', injecting, { timeoutMs: 30_000, intervalMs: 250 })
  return lines
}

async function breakAndDiagnose (webhook: string): Promise<string> {
  // Healthy: an injected Deployment that serves.
  await namespace(OK_NS)
  await provideModelVolume(OK_NS)
  await kubectlApply(deployment(OK_NS, 'iris', {}, { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/memory-limit': '256Mi' }, 1))
  await waitFor('the healthy Deployment\'s pod Ready', async () => (await getJson('pods', '-n', OK_NS, '-l', 'app=iris')).items.some(isReady), { timeoutMs: 180_000, intervalMs: 1000 })
  const healthy = await doctor('-n', OK_NS)
  expect(healthy.code === 0 && !healthy.findings.some(f => f.severity === 'error'), `doctor on a healthy namespace: exit ${healthy.code}, ${JSON.stringify(healthy.findings)}`)

  // Broken, one object per way.
  await namespace(BROKEN_NS)
  await provideModelVolume(BROKEN_NS)
  await podWithoutWebhook(webhook)
  await kubectlApply(deployment(BROKEN_NS, 'on-metadata', { 'onnx-sidecar.io/model': 'iris' }, {}, 0))
  await kubectlApply(pod('no-claim', { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/volume': 'models' }, { volumes: [{ name: 'models', persistentVolumeClaim: { claimName: 'no-such-claim', readOnly: true } }] }))
  // A claim no storage class can bind: it stays Pending, and so does its pod.
  await kubectlApply(toYaml({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'pending-claim', namespace: BROKEN_NS }, spec: { accessModes: ['ReadOnlyMany'], storageClassName: 'no-such-class', resources: { requests: { storage: '1Gi' } } } }))
  await kubectlApply(pod('pending', { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/volume': 'models' }, { volumes: [{ name: 'models', persistentVolumeClaim: { claimName: 'pending-claim', readOnly: true } }] }))
  // The injector denies these pods (a memory limit that is not a quantity): the ReplicaSet's FailedCreate events say why.
  await kubectlApply(deployment(BROKEN_NS, 'denied', {}, { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/memory-limit': 'lots' }, 1, false))
  await kubectlApply(pod('bad-model', { 'onnx-sidecar.io/model': 'no-such-model' }))
  // The pod's own onnx-sidecar container is merged over the injected one: only its image changes.
  await kubectlApply(pod('no-image', { 'onnx-sidecar.io/model': 'iris' }, { containers: [{ name: SIDECAR, image: '127.0.0.1:1/onnx-sidecar:missing' }] }))
  await namespace(OPTOUT_NS, ['onnx-sidecar.io/injection=disabled'])
  await kubectlApply(deployment(OPTOUT_NS, 'web', {}, { 'onnx-sidecar.io/model': 'iris' }, 0))

  const want: Array<[string, string]> = [
    ['OSD_POD_CREATED_BEFORE_WEBHOOK', 'early'],
    ['OSD_ANNOTATION_ON_WORKLOAD', 'on-metadata'],
    ['OSD_MODEL_VOLUME_MISSING', 'no-such-claim'],
    ['OSD_MODEL_VOLUME_PENDING', 'pending-claim'],
    ['OSD_SIDECAR_NOT_READY', 'bad-model'],
    ['OSD_IMAGE_PULL_FAILED', 'no-image']
  ]
  let last: Report | undefined
  const broken = await waitFor('doctor to name every broken object', async () => {
    last = await doctor('-n', BROKEN_NS)
    // bad-model: an error once the sidecar's reason (its log) or a failed probe is in.
    return want.every(([code, name]) => has(last as Report, code, name)) && last.findings.some(f => f.code === 'OSD_SIDECAR_NOT_READY' && f.severity === 'error') ? last : undefined
  }, { timeoutMs: 120_000, intervalMs: 2000 }).catch((err: Error) => {
    throw new Error(`${err.message}; last findings: ${JSON.stringify(last?.findings.map(f => `${f.code} ${f.object.name}`))}`)
  })
  expect(broken.code === 1, `doctor exits ${broken.code} with errors`)
  const denied = broken.findings.find(f => f.code === 'OSD_POD_DENIED' && f.object.kind === 'ReplicaSet' && f.object.name.startsWith('denied-')) as (Report['findings'][number] & { problem?: string }) | undefined
  expect(denied !== undefined && /memory-limit/.test(denied.problem ?? ''), `no OSD_POD_DENIED for the denied Deployment's ReplicaSet quoting the annotation: ${JSON.stringify(broken.findings.filter(f => f.code === 'OSD_POD_DENIED'))}`)
  const webhookLines = await breakWebhook(webhook)
  const optout = await doctor('-n', OPTOUT_NS)
  expect(optout.code === 1 && has(optout, 'OSD_NAMESPACE_EXCLUDED', OPTOUT_NS), `opted-out namespace: ${JSON.stringify(optout.findings)}`)
  const one = await doctor('bad-model', '-n', BROKEN_NS)
  expect(one.findings.every(f => f.object.name === 'bad-model' || f.object.kind === 'MutatingWebhookConfiguration'), `doctor POD reports other objects: ${JSON.stringify(one.findings)}`)
  return [`healthy: exit 0; broken: ${want.map(([c, n]) => `${c} ${n}`).join(', ')}, OSD_POD_DENIED ${denied?.object.name ?? ''}, exit 1; opted out: OSD_NAMESPACE_EXCLUDED`,
    'webhook deleted: OSD_WEBHOOK_NOT_REGISTERED', ...webhookLines].join('\n')
}

export async function checkDoctor (): Promise<string> {
  const webhook = String((await webhookConfiguration()).config.metadata.name)
  let result = ''
  let failure: Error | undefined
  try {
    result = await breakAndDiagnose(webhook)
  } catch (err) {
    failure = err instanceof Error ? err : new Error(String(err))
  }
  for (const ns of [OK_NS, BROKEN_NS, OPTOUT_NS]) {
    await kubectlRaw(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found'])
    await kubectlRaw(['delete', 'pv', `models-${ns}`, '--wait=false', '--ignore-not-found'])
  }
  if ((await kubectlRaw(['get', 'mutatingwebhookconfiguration', webhook])).code !== 0) throw new Error(`the webhook configuration ${webhook} was not restored`)
  if (failure !== undefined) throw failure
  return result
}
