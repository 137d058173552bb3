/**
 * The injector as the e2e runs it: the chart installed with `webhook.url` pointing at an
 * `onnx-sidecar webhook` on this machine, serving with the chart's TLS Secret and the
 * injection config from the chart's ConfigMap (what the in-cluster injector mounts).
 */
import { writeFileSync, readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { expect, log, runOk, startService, failIfExited, waitFor, freePort, makeCa, makeLeaf, type Service } from './lib.js'
import { SIDECAR_IMAGE } from './images.js'
import { ROOT, CHART, RELEASE, RELEASE_NS, ctx, baseEnv, logDir, pki, tool, kubectl, kubectlRaw, getJson, helm, type Json } from './context.js'

let webhookSvc: Service | undefined

export function webhookService (): Service {
  expect(webhookSvc !== undefined, 'the injector is not running')
  return webhookSvc
}

export async function webhookPorts (): Promise<void> {
  if (ctx.webhookPort !== 0) return
  ctx.webhookPort = await freePort()
  ctx.webhookMetricsPort = await freePort()
}

/** The chart's self-signed TLS Secret → the files the injector reads (what the kubelet
 * does when it mounts the Secret into the in-cluster injector). */
export async function writeTlsFromSecret (): Promise<Record<string, string>> {
  const secrets = (await getJson('secrets', '-n', RELEASE_NS)).items.filter((x: Json) => x.type === 'kubernetes.io/tls')
  expect(secrets.length === 1, `expected one kubernetes.io/tls Secret in ${RELEASE_NS}, found ${secrets.length}`)
  const data = secrets[0].data as Record<string, string>
  for (const k of ['ca.crt', 'tls.crt', 'tls.key']) expect(data[k] !== undefined, `Secret ${String(secrets[0].metadata.name)} has no ${k}`)
  const files: Record<string, string> = { 'ca.crt': 'webhook-ca.crt', 'tls.crt': 'webhook.crt', 'tls.key': 'webhook.key' }
  for (const [k, f] of Object.entries(files)) writeFileSync(join(pki, f), Buffer.from(data[k] as string, 'base64'))
  ctx.webhookCa = join(pki, 'webhook-ca.crt')
  return { name: secrets[0].metadata.name, ...data }
}

/** Without a working chart: register the local injector from a plain manifest, so the
 * admission and pod checks still say something (the helm checks have already failed). */
export async function registerWithoutChart (): Promise<void> {
  await webhookPorts()
  const wca = await makeCa(pki, 'webhook-ca', 'onnx-sidecar-e2e-webhook-ca')
  await makeLeaf(pki, 'webhook', wca, '/CN=onnx-sidecar-injector', 'serverAuth', ['IP:127.0.0.1', 'DNS:localhost'])
  ctx.webhookCa = wca.cert
  log('registering the local injector WITHOUT the chart (e2e/manifests/webhook-without-chart.yaml), default injection config')
  if (!existsSync(ctx.injectionConfigFile)) writeFileSync(ctx.injectionConfigFile, '{}\n')
  const text = readFileSync(join(ROOT, 'e2e', 'manifests', 'webhook-without-chart.yaml'), 'utf8')
    .replace('url: URL', `url: https://127.0.0.1:${ctx.webhookPort}/mutate`)
    .replace('caBundle: CA_BUNDLE', `caBundle: ${Buffer.from(readFileSync(ctx.webhookCa)).toString('base64')}`)
  await runOk(tool('kubectl'), ['--kubeconfig', ctx.kubeconfig, 'apply', '-f', '-'], { input: text, env: baseEnv })
  await kubectlRaw(['create', 'namespace', RELEASE_NS])
}

export async function installChart (): Promise<string> {
  await webhookPorts()
  expect(existsSync(join(CHART, 'Chart.yaml')), `no chart at ${CHART}`)
  // Default TLS mode (selfSigned): the chart makes the CA and a serving certificate that
  // includes webhook.url's host; the local injector serves with that Secret.
  // The injected sidecar runs the image built from this checkout and imported into containerd.
  const [repository, tag] = SIDECAR_IMAGE.split(/:(?=[^:/]+$)/) as [string, string]
  await helm('install', RELEASE, CHART, '--namespace', RELEASE_NS, '--create-namespace',
    '--set', `webhook.url=https://127.0.0.1:${ctx.webhookPort}/mutate`,
    '--set', `sidecar.image.repository=${repository}`, '--set', `sidecar.image.tag=${tag}`)
  const out = await helm('status', RELEASE, '--namespace', RELEASE_NS, '-o', 'json')
  const secret = await writeTlsFromSecret()
  const deployments = (await getJson('deployments', '-n', RELEASE_NS)).items.length
  expect(deployments === 0, `webhook.url is set but the chart installed ${deployments} injector Deployment(s)`)
  return `release ${RELEASE} ${String(JSON.parse(out).info?.status)} in ${RELEASE_NS}; serving certificate from Secret ${secret.name}, no in-cluster injector`
}

export async function extractInjectionConfig (): Promise<string> {
  // The chart's ConfigMap holds the injection config the in-cluster injector would mount.
  const cms = await getJson('configmaps', '-n', RELEASE_NS)
  for (const cm of cms.items) {
    for (const [key, text] of Object.entries<string>(cm.data ?? {})) {
      let doc: Json
      try { doc = parseYaml(text) } catch { continue }
      if (doc !== null && typeof doc === 'object' && typeof doc.image === 'string') {
        writeFileSync(ctx.injectionConfigFile, text)
        return `ConfigMap ${String(cm.metadata.name)} key ${key}: image ${String(doc.image)}`
      }
    }
  }
  throw new Error(`no ConfigMap in ${RELEASE_NS} holds an injection config (a YAML document with an "image" key)`)
}

export async function startWebhook (): Promise<string> {
  // What the chart passes to an in-cluster injector: the API server's version (image volumes need 1.35).
  const kubeVersion = String(JSON.parse(await kubectl('version', '-o', 'json')).serverVersion?.gitVersion)
  webhookSvc = startService('webhook', process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), 'webhook', '--kube-version', kubeVersion,
    '--tls-cert', join(pki, 'webhook.crt'), '--tls-key', join(pki, 'webhook.key'),
    '--config', ctx.injectionConfigFile, '--host', '127.0.0.1', '--port', String(ctx.webhookPort),
    '--metrics-port', String(ctx.webhookMetricsPort), '--reload-interval', '1'], { logDir, env: baseEnv })
  await waitFor('webhook health', async () => {
    failIfExited(webhookService())
    return (await fetch(`http://127.0.0.1:${ctx.webhookMetricsPort}/healthz`)).ok
  }, { timeoutMs: 30_000 })
  return `onnx-sidecar webhook on https://127.0.0.1:${ctx.webhookPort}/mutate, metrics on :${ctx.webhookMetricsPort}`
}

export async function webhookConfiguration (): Promise<Json> {
  const list = await getJson('mutatingwebhookconfigurations')
  const hooks = list.items.flatMap((c: Json) => (c.webhooks ?? []).map((w: Json) => ({ config: c, hook: w })))
  const ours = hooks.find((h: Json) => String(h.hook.clientConfig?.url ?? '').includes(`127.0.0.1:${ctx.webhookPort}`))
  expect(ours !== undefined, `no MutatingWebhookConfiguration calls https://127.0.0.1:${ctx.webhookPort}: ${JSON.stringify(hooks.map((h: Json) => h.hook.clientConfig))}`)
  return ours
}

