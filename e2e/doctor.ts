/**
 * `onnx-sidecar doctor` on the real cluster: a healthy namespace exits 0; then the setup is
 * broken in several ways at once, each by its own object (annotations on a Deployment's
 * metadata, a pod whose model claim is missing, a pod whose model does not exist, a pod
 * whose sidecar image cannot be pulled, a pod created while the webhook configuration was
 * deleted, a namespace opted out), and `doctor -o json` must name each object with its
 * code. Everything it breaks is restored: the webhook configuration in a `finally`, the
 * namespaces deleted at the end.
 */
import { stringify as toYaml } from 'yaml'
import { expect, run, waitFor } from './lib.js'
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

function deployment (ns: string, name: string, own: Record<string, string>, template: Record<string, string>, replicas: number): string {
  return toYaml({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns, annotations: own },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name }, annotations: template },
        spec: { containers: [{ name: 'app', image: APP_IMAGE, resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } } }] }
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
  const saved = await getJson('mutatingwebhookconfiguration', name)
  for (const k of ['resourceVersion', 'uid', 'creationTimestamp', 'generation', 'managedFields']) delete saved.metadata[k]
  await kubectl('delete', 'mutatingwebhookconfiguration', name)
  let failure: Error | undefined
  try {
    // The API server drops the webhook from its cache shortly after the delete.
    await waitFor('the API server to stop calling the deleted webhook', async () => !(await injecting()), { timeoutMs: 30_000, intervalMs: 250 })
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
  await kubectlApply(pod('bad-model', { 'onnx-sidecar.io/model': 'no-such-model' }))
  // The pod's own onnx-sidecar container is merged over the injected one: only its image changes.
  await kubectlApply(pod('no-image', { 'onnx-sidecar.io/model': 'iris' }, { containers: [{ name: SIDECAR, image: '127.0.0.1:1/onnx-sidecar:missing' }] }))
  await namespace(OPTOUT_NS, ['onnx-sidecar.io/injection=disabled'])
  await kubectlApply(deployment(OPTOUT_NS, 'web', {}, { 'onnx-sidecar.io/model': 'iris' }, 0))

  const want: Array<[string, string]> = [
    ['OSD_POD_CREATED_BEFORE_WEBHOOK', 'early'],
    ['OSD_ANNOTATION_ON_WORKLOAD', 'on-metadata'],
    ['OSD_MODEL_VOLUME_MISSING', 'no-such-claim'],
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
  const optout = await doctor('-n', OPTOUT_NS)
  expect(optout.code === 1 && has(optout, 'OSD_NAMESPACE_EXCLUDED', OPTOUT_NS), `opted-out namespace: ${JSON.stringify(optout.findings)}`)
  const one = await doctor('bad-model', '-n', BROKEN_NS)
  expect(one.findings.every(f => f.object.name === 'bad-model' || f.object.kind === 'MutatingWebhookConfiguration'), `doctor POD reports other objects: ${JSON.stringify(one.findings)}`)
  return `healthy: exit 0; broken: ${want.map(([c, n]) => `${c} ${n}`).join(', ')}, exit 1; opted out: OSD_NAMESPACE_EXCLUDED`
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
