/**
 * Admission: what the API server stores when pods pass through the injector. The
 * example Deployments (namespace `shop`) also run on the node later; the other pods here
 * live in the `admission` namespace and carry a nodeSelector no node matches, so they
 * are stored and never scheduled, which is all admission needs.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml, parseAllDocuments, stringify as toYaml } from 'yaml'
import { expect, runOk, sleep, waitFor } from './lib.js'
import { ROOT, CHART, RELEASE, RELEASE_NS, APP_NS, ADMISSION_NS, ctx, baseEnv, tool, kubectl, kubectlRaw, getJson, helm, webhookAdmissions, waitForDefaultSa, type Json } from './context.js'
import { assertInjected, assertNotInjected, sidecarOf } from './pod-assertions.js'
import { webhookConfiguration, webhookService, writeTlsFromSecret, extractInjectionConfig } from './injector-setup.js'

export async function checkRegistration (): Promise<string> {
  const { config, hook } = await webhookConfiguration()
  const ca = Buffer.from(hook.clientConfig.caBundle ?? '', 'base64').toString('utf8').trim()
  expect(ca === readFileSync(ctx.webhookCa, 'utf8').trim(), 'caBundle is not the CA of the injector\'s serving certificate')
  expect(hook.failurePolicy === 'Fail', `failurePolicy is ${String(hook.failurePolicy)}`)
  expect(hook.sideEffects === 'None', `sideEffects is ${String(hook.sideEffects)}`)
  expect(hook.reinvocationPolicy === 'IfNeeded', `reinvocationPolicy is ${String(hook.reinvocationPolicy)}`)
  expect((hook.matchConditions ?? []).some((m: Json) => String(m.expression).includes('onnx-sidecar.io/model')), `no matchCondition on onnx-sidecar.io/model: ${JSON.stringify(hook.matchConditions)}`)
  const excluded = JSON.stringify(hook.namespaceSelector ?? {})
  for (const ns of ['kube-system', 'kube-public', 'kube-node-lease', RELEASE_NS]) expect(excluded.includes(ns), `namespaceSelector does not exclude ${ns}: ${excluded}`)
  return `${String(config.metadata.name)}/${String(hook.name)}: failurePolicy Fail, matchConditions ${(hook.matchConditions ?? []).map((m: Json) => m.name).join(',')}, timeout ${String(hook.timeoutSeconds)}s`
}

export async function deploymentPods (name = 'recommender'): Promise<Json[]> {
  return (await getJson('pods', '-n', APP_NS, '-l', `app.kubernetes.io/name=${name}`)).items
}

export async function checkDeployment (): Promise<string> {
  await kubectl('apply', '-f', join(ROOT, 'examples', 'recommender', 'deployment.yaml'))
  const pods = await waitFor('2 recommender pods created by the ReplicaSet', async () => {
    const items = await deploymentPods()
    return items.length >= 2 ? items : undefined
  }, { timeoutMs: 90_000 }).catch(async (err: Error) => {
    // The ReplicaSet controller reports refused pods (e.g. a webhook error) as events.
    const events = await kubectlRaw(['get', 'events', '-n', APP_NS, '--field-selector', 'reason=FailedCreate', '-o', 'custom-columns=MESSAGE:.message', '--no-headers'])
    throw new Error(`${err.message}\nFailedCreate events:\n${events.stdout.trim() || '(none)'}`)
  })
  const lines: string[] = []
  for (const p of pods) {
    const gen = String(p.metadata.generateName ?? '')
    expect(gen.startsWith('recommender-') && String(p.metadata.name).startsWith(gen), `pod ${String(p.metadata.name)} was not created through generateName (generateName=${gen})`)
    expect(p.metadata.ownerReferences?.[0]?.kind === 'ReplicaSet', `pod ${String(p.metadata.name)} is not owned by a ReplicaSet`)
    lines.push(assertInjected(p, { native: true, models: 'iris' }))
  }
  return lines.join('\n')
}

/** examples/recommender/deployment-socket.yaml: onnx-sidecar.io/socket "true" and a pod fsGroup. */
export async function checkSocketDeployment (): Promise<string> {
  const r = await kubectlRaw(['apply', '-f', join(ROOT, 'examples', 'recommender', 'deployment-socket.yaml')])
  expect(r.code === 0, `kubectl apply failed: ${r.stderr}`)
  const pods = await waitFor('the recommender-socket pod created by the ReplicaSet', async () => {
    const items = await deploymentPods('recommender-socket')
    return items.length >= 1 ? items : undefined
  }, { timeoutMs: 90_000 })
  const lines: string[] = []
  for (const p of pods) {
    expect(p.metadata.ownerReferences?.[0]?.kind === 'ReplicaSet', `pod ${String(p.metadata.name)} is not owned by a ReplicaSet`)
    expect(p.spec.securityContext?.fsGroup === 10001, `pod ${String(p.metadata.name)}: fsGroup is ${String(p.spec.securityContext?.fsGroup)}, the template sets 10001`)
    lines.push(assertInjected(p, { native: true, models: 'iris', socket: true }))
  }
  const status = JSON.parse(pods[0].metadata.annotations['onnx-sidecar.io/status'])
  // The ReplicaSet controller, not kubectl, receives admission warnings: read the injector's
  // log. With fsGroup set there must be none (without it: "sockets on … without fsGroup").
  const admissions = readFileSync(webhookService().logFile, 'utf8').split('\n').flatMap(l => {
    try { return [JSON.parse(l)] } catch { return [] }
  }).filter((e: Json) => String(e.pod).startsWith('recommender-socket-') && e.result === 'injected')
  expect(admissions.length >= 1, 'the injector logged no admission of a recommender-socket pod')
  expect(admissions.every((e: Json) => e.warnings === 0), `the injector warned about the recommender-socket pod: ${JSON.stringify(admissions)}`)
  lines.push(`status: socket ${String(status.socket)}, volumes ${String(status.volumes)}, mounts ${String(status.mounts)}; pod fsGroup 10001, admitted without warnings`)
  return lines.join('\n')
}

export async function checkBarePod (): Promise<string> {
  const r = await kubectlRaw(['apply', '-f', join(ROOT, 'e2e', 'manifests', 'bare-pod.yaml')])
  expect(r.code === 0, `kubectl apply failed: ${r.stderr}`)
  const warning = r.stderr.split('\n').find(l => l.startsWith('Warning:') && l.includes('onnx-sidecar.io/thread'))
  expect(warning !== undefined, `kubectl showed no admission warning for the misspelt onnx-sidecar.io/thread: ${r.stderr}`)
  const p = await getJson('pod', 'bare-annotated', '-n', ADMISSION_NS)
  const summary = assertInjected(p, { native: false, models: 'iris' })
  const sc = sidecarOf(p)?.container
  const args = (sc.args ?? []).join(' ')
  expect(args.includes('debug'), `the log-level annotation did not reach the sidecar: ${args}`)
  return `${summary}\nkubectl: ${warning}`
}

export async function checkPlainPod (): Promise<string> {
  const before = await webhookAdmissions()
  const manifest = readFileSync(join(ROOT, 'e2e', 'manifests', 'plain-pod.yaml'), 'utf8')
  const r = await kubectlRaw(['create', '-f', '-'], manifest)
  expect(r.code === 0, `kubectl create failed: ${r.stderr}`)
  const p = await getJson('pod', 'plain', '-n', ADMISSION_NS)
  assertNotInjected(p)
  const submitted = parseYaml(manifest)
  expect(JSON.stringify(p.metadata.annotations) === JSON.stringify(submitted.metadata.annotations), `annotations changed: ${JSON.stringify(p.metadata.annotations)}`)
  expect(p.spec.containers.length === 1 && JSON.stringify(p.spec.containers[0].env) === JSON.stringify(submitted.spec.containers[0].env), 'containers changed')
  expect((p.spec.initContainers ?? []).length === 0, 'init containers were added')
  const after = await webhookAdmissions()
  expect(after === before, `the webhook was called (admissions ${before} → ${after}): matchConditions did not keep the pod away`)
  return `stored unchanged; webhook admissions stayed at ${after}`
}

export async function checkOptedOut (): Promise<string> {
  const before = await webhookAdmissions()
  await kubectl('apply', '-f', join(ROOT, 'e2e', 'manifests', 'opted-out-pod.yaml'))
  assertNotInjected(await getJson('pod', 'opted-out', '-n', ADMISSION_NS))
  const after = await webhookAdmissions()
  expect(after === before, `the webhook was called (admissions ${before} → ${after})`)
  return `stored unchanged; webhook admissions stayed at ${after}`
}

export async function checkInvalid (): Promise<string> {
  const r = await kubectlRaw(['apply', '-f', join(ROOT, 'e2e', 'manifests', 'invalid-pod.yaml')])
  expect(r.code !== 0, 'kubectl apply of a pod with onnx-sidecar.io/port: "70000" succeeded')
  const msg = r.stderr.trim()
  expect(/denied the request/.test(msg), `kubectl did not report a webhook denial: ${msg}`)
  expect(msg.includes('onnx-sidecar.io/port') && msg.includes('70000'), `the message does not name the annotation and the value: ${msg}`)
  const g = await kubectlRaw(['get', 'pod', 'invalid-port', '-n', ADMISSION_NS])
  expect(g.code !== 0, 'the rejected pod was stored')
  return `kubectl: ${msg}`
}

export async function checkExcluded (): Promise<string> {
  const before = await webhookAdmissions()
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'e2e', 'manifests', 'excluded-pods.yaml'), 'utf8')).map(d => d.toJSON())
  const ns = docs.find(d => d.kind === 'Namespace')
  await runOk(tool('kubectl'), ['--kubeconfig', ctx.kubeconfig, 'apply', '-f', '-'], { input: toYaml(ns), env: baseEnv })
  await waitForDefaultSa('legacy')
  await waitForDefaultSa('kube-system')
  for (const d of docs.filter(x => x.kind === 'Pod')) {
    await runOk(tool('kubectl'), ['--kubeconfig', ctx.kubeconfig, 'apply', '-f', '-'], { input: toYaml(d), env: baseEnv })
  }
  // Also one in the release's own namespace (the injector must never inject itself).
  const own = { ...docs.find(x => x.kind === 'Pod' && x.metadata.namespace === 'kube-system'), metadata: { name: 'annotated-in-release-ns', namespace: RELEASE_NS, annotations: { 'onnx-sidecar.io/model': 'iris' } } }
  await waitForDefaultSa(RELEASE_NS)
  await runOk(tool('kubectl'), ['--kubeconfig', ctx.kubeconfig, 'apply', '-f', '-'], { input: toYaml(own), env: baseEnv })
  for (const [ns, name] of [['kube-system', 'annotated-in-kube-system'], ['legacy', 'annotated-opted-out'], [RELEASE_NS, 'annotated-in-release-ns']] as const) {
    assertNotInjected(await getJson('pod', name, '-n', ns))
  }
  const system = (await getJson('pods', '-n', 'kube-system')).items
  for (const p of system) assertNotInjected(p)
  const after = await webhookAdmissions()
  expect(after === before, `the webhook was called for an excluded namespace (admissions ${before} → ${after})`)
  return `kube-system (${system.length} pods), labelled namespace "legacy" and ${RELEASE_NS}: stored unchanged, webhook not called`
}

export async function checkUpgrade (): Promise<string> {
  const before = await webhookConfiguration()
  const caBefore = before.hook.clientConfig.caBundle
  const revBefore = JSON.parse(await helm('status', RELEASE, '--namespace', RELEASE_NS, '-o', 'json')).version
  const secretBefore = await writeTlsFromSecret()
  // A real change: the sidecar log level, which must reach pods through the ConfigMap.
  await helm('upgrade', RELEASE, CHART, '--namespace', RELEASE_NS, '--reuse-values', '--set', 'sidecar.logLevel=debug')
  const after = await webhookConfiguration()
  const revAfter = JSON.parse(await helm('status', RELEASE, '--namespace', RELEASE_NS, '-o', 'json')).version
  expect(revAfter === revBefore + 1, `helm upgrade did not make a new revision (${String(revBefore)} → ${String(revAfter)})`)
  expect(after.hook.clientConfig.caBundle === caBefore, 'the caBundle changed on upgrade')
  // What the kubelet would do: refresh the mounted Secret and ConfigMap; the injector reloads them.
  const secretAfter = await writeTlsFromSecret()
  expect(secretAfter['ca.crt'] === secretBefore['ca.crt'], 'the CA in the TLS Secret changed on upgrade')
  const certKept = secretAfter['tls.crt'] === secretBefore['tls.crt']
  await extractInjectionConfig()
  const config = parseYaml(readFileSync(ctx.injectionConfigFile, 'utf8'))
  expect(config.logLevel === 'debug', `the upgraded ConfigMap has logLevel ${String(config.logLevel)}`)
  await sleep(3000) // the injector checks its files every second (--reload-interval 1)
  await kubectl('apply', '-f', join(ROOT, 'e2e', 'manifests', 'after-upgrade-pod.yaml'))
  const p = await getJson('pod', 'after-upgrade', '-n', ADMISSION_NS)
  const summary = assertInjected(p, { native: true, models: 'iris' })
  const args = (sidecarOf(p)?.container.args ?? []).join(' ')
  expect(/--log-level[ =]debug/.test(args), `the upgraded sidecar.logLevel did not reach the new pod: ${args}`)
  return `revision ${String(revBefore)} → ${String(revAfter)}; CA and caBundle unchanged, serving certificate ${certKept ? 'unchanged' : 're-issued by the same CA'}; ${summary}; sidecar.logLevel=debug reached it`
}
