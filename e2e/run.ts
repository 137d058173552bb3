/**
 * End-to-end test against a real Kubernetes control plane (`npm run test:e2e`).
 *
 * 1. Builds (once, cached outside the repo) kube-apiserver, kube-controller-manager,
 *    kubectl and etcd (e2e/build-control-plane.sh), and Helm (scripts/ensure-helm.sh).
 * 2. Starts etcd, kube-apiserver and kube-controller-manager on loopback with generated
 *    certificates, client-certificate auth, RBAC and a service-account key. No kubelet and
 *    no scheduler: pods are stored and stay Pending, which is all admission needs.
 * 3. Runs `onnx-sidecar webhook` locally over TLS and `helm install`s the chart with
 *    `webhook.url` pointing at it; the injector reads the injection config the chart renders.
 * 4. Checks admission with kubectl: Deployment pods (generateName) and a bare Pod are
 *    injected; a pod without the annotation is stored unchanged and never reaches the
 *    webhook; an invalid annotation is rejected with a clear message; excluded namespaces
 *    are left alone; `helm upgrade` keeps the CA and injection keeps working.
 * 5. Pod emulation: runs a stored, injected recommender pod's containers as local processes
 *    (e2e/pod.ts), the example app answers through its sidecar with the right predictions
 *    over TCP, and Prometheus, configured from the pod's prometheus.io/* annotations, has
 *    the series. Then the socket variant (examples/recommender/deployment-socket.yaml,
 *    `onnx-sidecar.io/socket: "true"`): the same app answers over the Unix socket — what
 *    the app reports and what /proc shows of its connections — and gRPC answers on both
 *    the pod's ONNX_SIDECAR_GRPC_ADDRESS and its ONNX_SIDECAR_GRPC_SOCKET.
 *
 * Prints one `ok N - ...` / `not ok N - ...` line per check and `e2e: P passed, F failed`;
 * exits 1 when a check failed. E2E_KEEP=1 keeps the work directory (logs, certs, kubeconfig).
 */
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, readdirSync, lstatSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml, parseAllDocuments, stringify as toYaml } from 'yaml'
import {
  check, expect, log, results, sleep, startService, stopAll, failIfExited, tail, run, runOk, waitFor,
  freePort, makeCa, makeLeaf, parseMetrics, sumMetric, imageRepository, processSockets, type Service
} from './lib.js'
import { runPod, type RunningPod } from './pod.js'

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const CHART = join(ROOT, 'helm', 'onnx-sidecar')
const RELEASE = 'onnx-sidecar'
const RELEASE_NS = 'onnx-sidecar-system'
const APP_NS = 'shop'
const STARTED = Date.now()

const work = mkdtempSync(join(tmpdir(), 'onnx-sidecar-e2e-'))
const logDir = join(work, 'logs')
const pki = join(work, 'pki')
mkdirSync(logDir)
mkdirSync(pki)

// Loopback traffic must never go through a proxy (the API server honours HTTPS_PROXY when
// it calls the webhook).
const baseEnv: NodeJS.ProcessEnv = {
  ...process.env,
  NO_PROXY: ['127.0.0.1', 'localhost', process.env.NO_PROXY].filter(Boolean).join(','),
  no_proxy: ['127.0.0.1', 'localhost', process.env.no_proxy].filter(Boolean).join(',')
}

let bin = ''
let helmBin = ''
let kubeconfig = ''
let webhookSvc: Service | undefined
let webhookMetricsPort = 0
let webhookPort = 0
let webhookCa = ''
const injectionConfigFile = join(work, 'injection-config.yaml')
let pod: RunningPod | undefined
let prometheus: Service | undefined

function tool (name: string): string { return join(bin, name) }

async function kubectl (...args: string[]): Promise<string> {
  return await runOk(tool('kubectl'), ['--kubeconfig', kubeconfig, ...args], { env: baseEnv })
}

async function kubectlRaw (args: string[], input?: string): Promise<{ code: number, stdout: string, stderr: string }> {
  return await run(tool('kubectl'), ['--kubeconfig', kubeconfig, ...args], { env: baseEnv, ...(input === undefined ? {} : { input }) })
}

async function getJson (...args: string[]): Promise<Json> {
  return JSON.parse(await kubectl('get', ...args, '-o', 'json'))
}

async function helm (...args: string[]): Promise<string> {
  return await runOk(helmBin, [...args, '--kubeconfig', kubeconfig], {
    env: { ...baseEnv, HELM_CACHE_HOME: join(work, 'helm', 'cache'), HELM_CONFIG_HOME: join(work, 'helm', 'config'), HELM_DATA_HOME: join(work, 'helm', 'data') },
    timeoutMs: 180_000
  })
}

async function webhookAdmissions (): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${webhookMetricsPort}/metrics`)
  return sumMetric(parseMetrics(await res.text()), 'onnx_sidecar_injector_admissions_total')
}

// ---------------------------------------------------------------- pod assertions

const SIDECAR = 'onnx-sidecar'

function sidecarOf (p: Json): { container: Json, native: boolean } | undefined {
  const init = (p.spec.initContainers ?? []).find((c: Json) => c.name === SIDECAR)
  if (init !== undefined) return { container: init, native: true }
  const reg = (p.spec.containers ?? []).find((c: Json) => c.name === SIDECAR)
  return reg === undefined ? undefined : { container: reg, native: false }
}

const SOCKET_DIR = '/var/run/onnx-sidecar'
const SOCKET_VOLUME = 'onnx-sidecar-socket'

function envOf (c: Json, name: string): string | undefined {
  return (c.env ?? []).find((e: Json) => e.name === name)?.value
}

/** `--flag value` or `--flag=value` in a container's command and args. */
function argOf (c: Json, flag: string): string | undefined {
  const args: string[] = [...(c.command ?? []), ...(c.args ?? [])].map(String)
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) return args[i + 1]
    if (args[i]?.startsWith(`${flag}=`) === true) return args[i]?.slice(flag.length + 1)
  }
  return undefined
}

/** Everything the SPEC says an injected pod has; returns a one-line summary.
 * `socket`: onnx-sidecar.io/socket is on (the socket volume, mounts, --socket-dir and
 * variables must be there) or off (none of them may be). */
function assertInjected (p: Json, want: { native: boolean, models: string, socket?: boolean }): string {
  const name = `${String(p.metadata.namespace)}/${String(p.metadata.name)}`
  const sc = sidecarOf(p)
  expect(sc !== undefined, `${name}: no ${SIDECAR} container was added`)
  const count = [...(p.spec.initContainers ?? []), ...p.spec.containers].filter((c: Json) => c.name === SIDECAR).length
  expect(count === 1, `${name}: ${count} ${SIDECAR} containers (injected more than once?)`)
  expect(sc.native === want.native, `${name}: sidecar is ${sc.native ? 'a native sidecar' : 'a regular container'}, wanted ${want.native ? 'native' : 'regular'}`)
  if (want.native) {
    expect(sc.container.restartPolicy === 'Always', `${name}: native sidecar without restartPolicy Always`)
    expect(sc.container.startupProbe?.httpGet !== undefined, `${name}: native sidecar without an HTTP startupProbe`)
  }
  const status = JSON.parse(p.metadata.annotations?.['onnx-sidecar.io/status'] ?? 'null')
  expect(status !== null, `${name}: no onnx-sidecar.io/status annotation`)
  const ann = p.metadata.annotations
  expect(ann['prometheus.io/scrape'] === 'true' && ann['prometheus.io/port'] !== undefined && ann['prometheus.io/path'] !== undefined, `${name}: prometheus.io/* annotations missing`)
  const args = [...(sc.container.command ?? []), ...(sc.container.args ?? [])].join(' ')
  expect(args.includes(want.models), `${name}: sidecar args do not name model ${want.models}: ${args}`)
  const mount = (sc.container.volumeMounts ?? []).find((m: Json) => m.mountPath === '/models')
  expect(mount?.readOnly === true, `${name}: model volume not mounted read-only at /models`)
  expect((p.spec.volumes ?? []).some((v: Json) => v.name === mount.name), `${name}: volume ${String(mount.name)} not in the pod`)
  const sec = sc.container.securityContext ?? {}
  expect(sec.runAsNonRoot === true && sec.readOnlyRootFilesystem === true && sec.allowPrivilegeEscalation === false &&
    (sec.capabilities?.drop ?? []).includes('ALL') && sec.seccompProfile?.type === 'RuntimeDefault', `${name}: sidecar security context is not hardened: ${JSON.stringify(sec)}`)
  const grpcPort = argOf(sc.container, '--grpc-port')
  expect(/^\d+$/.test(grpcPort ?? ''), `${name}: sidecar args have no --grpc-port: ${args}`)
  const socket = want.socket === true
  const socketVolume = (p.spec.volumes ?? []).find((v: Json) => v.name === SOCKET_VOLUME)
  const sidecarSocketMount = (sc.container.volumeMounts ?? []).find((m: Json) => m.mountPath === SOCKET_DIR)
  if (socket) {
    expect(socketVolume?.emptyDir?.medium === 'Memory', `${name}: no in-memory emptyDir volume ${SOCKET_VOLUME}: ${JSON.stringify(socketVolume)}`)
    expect(sidecarSocketMount?.name === SOCKET_VOLUME && sidecarSocketMount.readOnly !== true, `${name}: sidecar does not mount ${SOCKET_VOLUME} read-write at ${SOCKET_DIR}: ${JSON.stringify(sidecarSocketMount)}`)
    expect(argOf(sc.container, '--socket-dir') === SOCKET_DIR, `${name}: sidecar args have no --socket-dir ${SOCKET_DIR}: ${args}`)
    expect(status.socket === true && (status.volumes ?? []).includes(SOCKET_VOLUME), `${name}: onnx-sidecar.io/status does not record the socket: ${JSON.stringify(status)}`)
  } else {
    expect(socketVolume === undefined && sidecarSocketMount === undefined && argOf(sc.container, '--socket-dir') === undefined, `${name}: sockets are on but the pod did not ask for them`)
  }
  for (const c of p.spec.containers) {
    if (c.name === SIDECAR) continue
    const cname = `${name}: container ${String(c.name)}`
    expect(/^http:\/\/127\.0\.0\.1:\d+$/.test(envOf(c, 'ONNX_SIDECAR_URL') ?? ''), `${cname} has no ONNX_SIDECAR_URL`)
    expect(envOf(c, 'ONNX_SIDECAR_GRPC_ADDRESS') === `127.0.0.1:${String(grpcPort)}`, `${cname}: ONNX_SIDECAR_GRPC_ADDRESS is ${String(envOf(c, 'ONNX_SIDECAR_GRPC_ADDRESS'))}, the sidecar has --grpc-port ${String(grpcPort)}`)
    const mount = (c.volumeMounts ?? []).find((m: Json) => m.mountPath === SOCKET_DIR)
    if (socket) {
      expect(envOf(c, 'ONNX_SIDECAR_SOCKET') === `${SOCKET_DIR}/http.sock`, `${cname}: ONNX_SIDECAR_SOCKET is ${String(envOf(c, 'ONNX_SIDECAR_SOCKET'))}`)
      expect(envOf(c, 'ONNX_SIDECAR_GRPC_SOCKET') === `${SOCKET_DIR}/grpc.sock`, `${cname}: ONNX_SIDECAR_GRPC_SOCKET is ${String(envOf(c, 'ONNX_SIDECAR_GRPC_SOCKET'))}`)
      expect(mount?.name === SOCKET_VOLUME && mount.readOnly === true, `${cname} does not mount ${SOCKET_VOLUME} read-only at ${SOCKET_DIR}: ${JSON.stringify(mount)}`)
      expect((status.mounts ?? []).includes(c.name), `${cname} is not in the status annotation's mounts: ${JSON.stringify(status.mounts)}`)
    } else {
      expect(envOf(c, 'ONNX_SIDECAR_SOCKET') === undefined && envOf(c, 'ONNX_SIDECAR_GRPC_SOCKET') === undefined && mount === undefined, `${cname} got socket variables or the socket mount`)
    }
  }
  const app = p.spec.containers.find((c: Json) => c.name !== SIDECAR)
  const vars = ['ONNX_SIDECAR_URL', 'ONNX_SIDECAR_GRPC_ADDRESS', 'ONNX_SIDECAR_SOCKET', 'ONNX_SIDECAR_GRPC_SOCKET']
    .filter(v => envOf(app, v) !== undefined).map(v => `${v}=${String(envOf(app, v))}`)
  return `${name}: ${want.native ? 'native sidecar' : 'sidecar container'} ${String(sc.container.image)}${socket ? ` --socket-dir ${SOCKET_DIR}` : ''}; ${String(app.name)}: ${vars.join(' ')}`
}

function assertNotInjected (p: Json): void {
  const name = `${String(p.metadata.namespace)}/${String(p.metadata.name)}`
  expect(sidecarOf(p) === undefined, `${name}: an ${SIDECAR} container was added`)
  expect(p.metadata.annotations?.['onnx-sidecar.io/status'] === undefined, `${name}: has an onnx-sidecar.io/status annotation`)
  for (const c of p.spec.containers) {
    const added = (c.env ?? []).filter((e: Json) => String(e.name).startsWith('ONNX_SIDECAR_')).map((e: Json) => e.name)
    expect(added.length === 0, `${name}: ${added.join(', ')} added to ${String(c.name)}`)
  }
  expect(!(p.spec.volumes ?? []).some((v: Json) => String(v.name).startsWith('onnx-sidecar-')), `${name}: an onnx-sidecar-* volume was added`)
}

// ---------------------------------------------------------------- phases

async function buildTools (): Promise<void> {
  const cp = await run('bash', [join(ROOT, 'e2e', 'build-control-plane.sh')], { timeoutMs: 60 * 60_000, env: baseEnv })
  if (cp.code !== 0) throw new Error(`e2e/build-control-plane.sh failed:\n${cp.stderr.split('\n').slice(-30).join('\n')}`)
  bin = cp.stdout.trim().split('\n').pop() ?? ''
  const h = await run('bash', [join(ROOT, 'scripts', 'ensure-helm.sh')], { timeoutMs: 30 * 60_000, env: baseEnv })
  if (h.code !== 0) throw new Error(`scripts/ensure-helm.sh failed:\n${h.stderr.split('\n').slice(-30).join('\n')}`)
  helmBin = h.stdout.trim().split('\n').pop() ?? ''
  const prom = await run('bash', [join(ROOT, 'e2e', 'ensure-prometheus.sh')], { timeoutMs: 10 * 60_000, env: baseEnv })
  if (prom.code !== 0) throw new Error(`e2e/ensure-prometheus.sh failed:\n${prom.stderr.split('\n').slice(-30).join('\n')}`)
}

async function startControlPlane (): Promise<string> {
  const ca = await makeCa(pki, 'ca', 'onnx-sidecar-e2e-ca')
  const serving = await makeLeaf(pki, 'apiserver', ca, '/CN=kube-apiserver', 'serverAuth',
    ['IP:127.0.0.1', 'IP:10.0.0.1', 'DNS:localhost', 'DNS:kubernetes', 'DNS:kubernetes.default', 'DNS:kubernetes.default.svc', 'DNS:kubernetes.default.svc.cluster.local'])
  const admin = await makeLeaf(pki, 'admin', ca, '/O=system:masters/CN=e2e-admin', 'clientAuth')
  const kcmCert = await makeLeaf(pki, 'controller-manager', ca, '/O=system:masters/CN=system:kube-controller-manager', 'clientAuth')
  const saKey = join(pki, 'sa.key')
  const saPub = join(pki, 'sa.pub')
  await runOk('openssl', ['genrsa', '-out', saKey, '2048'])
  await runOk('openssl', ['rsa', '-in', saKey, '-pubout', '-out', saPub])

  const [etcdPort, etcdPeer, apiPort, kcmPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const etcd = startService('etcd', tool('etcd'), ['-data-dir', join(work, 'etcd'), '-client-url', `http://127.0.0.1:${etcdPort}`, '-peer-url', `http://127.0.0.1:${etcdPeer}`], { logDir, env: baseEnv })
  await waitFor('etcd', async () => {
    failIfExited(etcd)
    return (await fetch(`http://127.0.0.1:${etcdPort}/health`)).ok
  }, { timeoutMs: 30_000 })

  const apiserver = startService('kube-apiserver', tool('kube-apiserver'), [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${apiPort}`,
    `--cert-dir=${join(work, 'apiserver')}`,
    `--tls-cert-file=${serving.cert}`, `--tls-private-key-file=${serving.key}`, `--client-ca-file=${ca.cert}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${saPub}`, `--service-account-signing-key-file=${saKey}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--authorization-mode=RBAC',
    '--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota',
    '--profiling=false', '--v=1'
  ], { logDir, env: baseEnv })

  const writeKubeconfig = (file: string, user: { cert: string, key: string }): void => {
    writeFileSync(file, toYaml({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: `https://127.0.0.1:${apiPort}`, 'certificate-authority': ca.cert } }],
      users: [{ name: 'e2e', user: { 'client-certificate': user.cert, 'client-key': user.key } }],
      contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'e2e' } }],
      'current-context': 'e2e'
    }))
  }
  kubeconfig = join(work, 'kubeconfig')
  writeKubeconfig(kubeconfig, admin)
  const kcmKubeconfig = join(work, 'controller-manager.kubeconfig')
  writeKubeconfig(kcmKubeconfig, kcmCert)

  await waitFor('kube-apiserver /readyz', async () => {
    failIfExited(apiserver)
    const r = await kubectlRaw(['get', '--raw', '/readyz'])
    if (r.code !== 0) throw new Error(r.stderr.trim())
    return r.stdout.trim() === 'ok'
  }, { timeoutMs: 120_000 })

  const kcm = startService('kube-controller-manager', tool('kube-controller-manager'), [
    `--kubeconfig=${kcmKubeconfig}`,
    `--authentication-kubeconfig=${kcmKubeconfig}`, `--authorization-kubeconfig=${kcmKubeconfig}`,
    '--bind-address=127.0.0.1', `--secure-port=${kcmPort}`, `--cert-dir=${join(work, 'controller-manager')}`,
    '--leader-elect=false',
    `--service-account-private-key-file=${saKey}`, `--root-ca-file=${ca.cert}`,
    '--use-service-account-credentials=false',
    '--v=1'
  ], { logDir, env: baseEnv })
  // The service-account controller creating "default" shows the controllers run.
  await waitFor('kube-controller-manager (default service account)', async () => {
    failIfExited(kcm)
    return (await kubectlRaw(['get', 'serviceaccount', 'default', '-n', 'default'])).code === 0
  }, { timeoutMs: 120_000 })
  const version = JSON.parse(await kubectl('version', '-o', 'json'))
  return `kube-apiserver ${String(version.serverVersion?.gitVersion)} on 127.0.0.1:${apiPort}, etcd on :${etcdPort}; work dir ${work}`
}

async function webhookPorts (): Promise<void> {
  if (webhookPort !== 0) return
  webhookPort = await freePort()
  webhookMetricsPort = await freePort()
}

/** The chart's self-signed TLS Secret → the files the injector reads (what the kubelet
 * does when it mounts the Secret into the in-cluster injector). */
async function writeTlsFromSecret (): Promise<Record<string, string>> {
  const secrets = (await getJson('secrets', '-n', RELEASE_NS)).items.filter((x: Json) => x.type === 'kubernetes.io/tls')
  expect(secrets.length === 1, `expected one kubernetes.io/tls Secret in ${RELEASE_NS}, found ${secrets.length}`)
  const data = secrets[0].data as Record<string, string>
  for (const k of ['ca.crt', 'tls.crt', 'tls.key']) expect(data[k] !== undefined, `Secret ${String(secrets[0].metadata.name)} has no ${k}`)
  const files: Record<string, string> = { 'ca.crt': 'webhook-ca.crt', 'tls.crt': 'webhook.crt', 'tls.key': 'webhook.key' }
  for (const [k, f] of Object.entries(files)) writeFileSync(join(pki, f), Buffer.from(data[k] as string, 'base64'))
  webhookCa = join(pki, 'webhook-ca.crt')
  return { name: secrets[0].metadata.name, ...data }
}

/** Without a working chart: register the local injector from a plain manifest, so the
 * admission and pod checks still say something (the helm checks have already failed). */
async function registerWithoutChart (): Promise<void> {
  await webhookPorts()
  const wca = await makeCa(pki, 'webhook-ca', 'onnx-sidecar-e2e-webhook-ca')
  await makeLeaf(pki, 'webhook', wca, '/CN=onnx-sidecar-injector', 'serverAuth', ['IP:127.0.0.1', 'DNS:localhost'])
  webhookCa = wca.cert
  log('registering the local injector WITHOUT the chart (e2e/manifests/webhook-without-chart.yaml), default injection config')
  if (!existsSync(injectionConfigFile)) writeFileSync(injectionConfigFile, '{}\n')
  const text = readFileSync(join(ROOT, 'e2e', 'manifests', 'webhook-without-chart.yaml'), 'utf8')
    .replace('url: URL', `url: https://127.0.0.1:${webhookPort}/mutate`)
    .replace('caBundle: CA_BUNDLE', `caBundle: ${Buffer.from(readFileSync(webhookCa)).toString('base64')}`)
  await runOk(tool('kubectl'), ['--kubeconfig', kubeconfig, 'apply', '-f', '-'], { input: text, env: baseEnv })
  await kubectlRaw(['create', 'namespace', RELEASE_NS])
}

async function installChart (): Promise<string> {
  await webhookPorts()
  expect(existsSync(join(CHART, 'Chart.yaml')), `no chart at ${CHART}`)
  // Default TLS mode (selfSigned): the chart makes the CA and a serving certificate that
  // includes webhook.url's host; the local injector serves with that Secret.
  await helm('install', RELEASE, CHART, '--namespace', RELEASE_NS, '--create-namespace',
    '--set', `webhook.url=https://127.0.0.1:${webhookPort}/mutate`)
  const out = await helm('status', RELEASE, '--namespace', RELEASE_NS, '-o', 'json')
  const secret = await writeTlsFromSecret()
  const deployments = (await getJson('deployments', '-n', RELEASE_NS)).items.length
  expect(deployments === 0, `webhook.url is set but the chart installed ${deployments} injector Deployment(s)`)
  return `release ${RELEASE} ${String(JSON.parse(out).info?.status)} in ${RELEASE_NS}; serving certificate from Secret ${secret.name}, no in-cluster injector`
}

async function extractInjectionConfig (): Promise<string> {
  // The chart's ConfigMap holds the injection config the in-cluster injector would mount.
  const cms = await getJson('configmaps', '-n', RELEASE_NS)
  for (const cm of cms.items) {
    for (const [key, text] of Object.entries<string>(cm.data ?? {})) {
      let doc: Json
      try { doc = parseYaml(text) } catch { continue }
      if (doc !== null && typeof doc === 'object' && typeof doc.image === 'string') {
        writeFileSync(injectionConfigFile, text)
        return `ConfigMap ${String(cm.metadata.name)} key ${key}: image ${String(doc.image)}`
      }
    }
  }
  throw new Error(`no ConfigMap in ${RELEASE_NS} holds an injection config (a YAML document with an "image" key)`)
}

async function startWebhook (): Promise<string> {
  webhookSvc = startService('webhook', process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), 'webhook',
    '--tls-cert', join(pki, 'webhook.crt'), '--tls-key', join(pki, 'webhook.key'),
    '--config', injectionConfigFile, '--host', '127.0.0.1', '--port', String(webhookPort),
    '--metrics-port', String(webhookMetricsPort), '--reload-interval', '1'], { logDir, env: baseEnv })
  await waitFor('webhook health', async () => {
    failIfExited(webhookSvc as Service)
    return (await fetch(`http://127.0.0.1:${webhookMetricsPort}/healthz`)).ok
  }, { timeoutMs: 30_000 })
  return `onnx-sidecar webhook on https://127.0.0.1:${webhookPort}/mutate, metrics on :${webhookMetricsPort}`
}

async function webhookConfiguration (): Promise<Json> {
  const list = await getJson('mutatingwebhookconfigurations')
  const hooks = list.items.flatMap((c: Json) => (c.webhooks ?? []).map((w: Json) => ({ config: c, hook: w })))
  const ours = hooks.find((h: Json) => String(h.hook.clientConfig?.url ?? '').includes(`127.0.0.1:${webhookPort}`))
  expect(ours !== undefined, `no MutatingWebhookConfiguration calls https://127.0.0.1:${webhookPort}: ${JSON.stringify(hooks.map((h: Json) => h.hook.clientConfig))}`)
  return ours
}

async function checkRegistration (): Promise<string> {
  const { config, hook } = await webhookConfiguration()
  const ca = Buffer.from(hook.clientConfig.caBundle ?? '', 'base64').toString('utf8').trim()
  expect(ca === readFileSync(webhookCa, 'utf8').trim(), 'caBundle is not the CA of the injector\'s serving certificate')
  expect(hook.failurePolicy === 'Fail', `failurePolicy is ${String(hook.failurePolicy)}`)
  expect(hook.sideEffects === 'None', `sideEffects is ${String(hook.sideEffects)}`)
  expect(hook.reinvocationPolicy === 'IfNeeded', `reinvocationPolicy is ${String(hook.reinvocationPolicy)}`)
  expect((hook.matchConditions ?? []).some((m: Json) => String(m.expression).includes('onnx-sidecar.io/model')), `no matchCondition on onnx-sidecar.io/model: ${JSON.stringify(hook.matchConditions)}`)
  const excluded = JSON.stringify(hook.namespaceSelector ?? {})
  for (const ns of ['kube-system', 'kube-public', 'kube-node-lease', RELEASE_NS]) expect(excluded.includes(ns), `namespaceSelector does not exclude ${ns}: ${excluded}`)
  return `${String(config.metadata.name)}/${String(hook.name)}: failurePolicy Fail, matchConditions ${(hook.matchConditions ?? []).map((m: Json) => m.name).join(',')}, timeout ${String(hook.timeoutSeconds)}s`
}

async function waitForDefaultSa (ns: string): Promise<void> {
  await waitFor(`service account default in ${ns}`, async () => (await kubectlRaw(['get', 'serviceaccount', 'default', '-n', ns])).code === 0, { timeoutMs: 60_000 })
}

async function deploymentPods (name = 'recommender'): Promise<Json[]> {
  return (await getJson('pods', '-n', APP_NS, '-l', `app.kubernetes.io/name=${name}`)).items
}

async function checkDeployment (): Promise<string> {
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
async function checkSocketDeployment (): Promise<string> {
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
  const admissions = readFileSync((webhookSvc as Service).logFile, 'utf8').split('\n').flatMap(l => {
    try { return [JSON.parse(l)] } catch { return [] }
  }).filter((e: Json) => String(e.pod).startsWith('recommender-socket-') && e.result === 'injected')
  expect(admissions.length >= 1, 'the injector logged no admission of a recommender-socket pod')
  expect(admissions.every((e: Json) => e.warnings === 0), `the injector warned about the recommender-socket pod: ${JSON.stringify(admissions)}`)
  lines.push(`status: socket ${String(status.socket)}, volumes ${String(status.volumes)}, mounts ${String(status.mounts)}; pod fsGroup 10001, admitted without warnings`)
  return lines.join('\n')
}

async function checkBarePod (): Promise<string> {
  const r = await kubectlRaw(['apply', '-f', join(ROOT, 'e2e', 'manifests', 'bare-pod.yaml')])
  expect(r.code === 0, `kubectl apply failed: ${r.stderr}`)
  const warning = r.stderr.split('\n').find(l => l.startsWith('Warning:') && l.includes('onnx-sidecar.io/thread'))
  expect(warning !== undefined, `kubectl showed no admission warning for the misspelt onnx-sidecar.io/thread: ${r.stderr}`)
  const p = await getJson('pod', 'bare-annotated', '-n', APP_NS)
  const summary = assertInjected(p, { native: false, models: 'iris' })
  const sc = sidecarOf(p)?.container
  const args = (sc.args ?? []).join(' ')
  expect(args.includes('debug'), `the log-level annotation did not reach the sidecar: ${args}`)
  return `${summary}\nkubectl: ${warning}`
}

async function checkPlainPod (): Promise<string> {
  const before = await webhookAdmissions()
  const manifest = readFileSync(join(ROOT, 'e2e', 'manifests', 'plain-pod.yaml'), 'utf8')
  const r = await kubectlRaw(['create', '-f', '-'], manifest)
  expect(r.code === 0, `kubectl create failed: ${r.stderr}`)
  const p = await getJson('pod', 'plain', '-n', APP_NS)
  assertNotInjected(p)
  const submitted = parseYaml(manifest)
  expect(JSON.stringify(p.metadata.annotations) === JSON.stringify(submitted.metadata.annotations), `annotations changed: ${JSON.stringify(p.metadata.annotations)}`)
  expect(p.spec.containers.length === 1 && JSON.stringify(p.spec.containers[0].env) === JSON.stringify(submitted.spec.containers[0].env), 'containers changed')
  expect((p.spec.initContainers ?? []).length === 0, 'init containers were added')
  const after = await webhookAdmissions()
  expect(after === before, `the webhook was called (admissions ${before} → ${after}): matchConditions did not keep the pod away`)
  return `stored unchanged; webhook admissions stayed at ${after}`
}

async function checkOptedOut (): Promise<string> {
  const before = await webhookAdmissions()
  await kubectl('apply', '-f', join(ROOT, 'e2e', 'manifests', 'opted-out-pod.yaml'))
  assertNotInjected(await getJson('pod', 'opted-out', '-n', APP_NS))
  const after = await webhookAdmissions()
  expect(after === before, `the webhook was called (admissions ${before} → ${after})`)
  return `stored unchanged; webhook admissions stayed at ${after}`
}

async function checkInvalid (): Promise<string> {
  const r = await kubectlRaw(['apply', '-f', join(ROOT, 'e2e', 'manifests', 'invalid-pod.yaml')])
  expect(r.code !== 0, 'kubectl apply of a pod with onnx-sidecar.io/port: "70000" succeeded')
  const msg = r.stderr.trim()
  expect(/denied the request/.test(msg), `kubectl did not report a webhook denial: ${msg}`)
  expect(msg.includes('onnx-sidecar.io/port') && msg.includes('70000'), `the message does not name the annotation and the value: ${msg}`)
  const g = await kubectlRaw(['get', 'pod', 'invalid-port', '-n', APP_NS])
  expect(g.code !== 0, 'the rejected pod was stored')
  return `kubectl: ${msg}`
}

async function checkExcluded (): Promise<string> {
  const before = await webhookAdmissions()
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'e2e', 'manifests', 'excluded-pods.yaml'), 'utf8')).map(d => d.toJSON())
  const ns = docs.find(d => d.kind === 'Namespace')
  await runOk(tool('kubectl'), ['--kubeconfig', kubeconfig, 'apply', '-f', '-'], { input: toYaml(ns), env: baseEnv })
  await waitForDefaultSa('legacy')
  await waitForDefaultSa('kube-system')
  for (const d of docs.filter(x => x.kind === 'Pod')) {
    await runOk(tool('kubectl'), ['--kubeconfig', kubeconfig, 'apply', '-f', '-'], { input: toYaml(d), env: baseEnv })
  }
  // Also one in the release's own namespace (the injector must never inject itself).
  const own = { ...docs.find(x => x.kind === 'Pod' && x.metadata.namespace === 'kube-system'), metadata: { name: 'annotated-in-release-ns', namespace: RELEASE_NS, annotations: { 'onnx-sidecar.io/model': 'iris' } } }
  await waitForDefaultSa(RELEASE_NS)
  await runOk(tool('kubectl'), ['--kubeconfig', kubeconfig, 'apply', '-f', '-'], { input: toYaml(own), env: baseEnv })
  for (const [ns, name] of [['kube-system', 'annotated-in-kube-system'], ['legacy', 'annotated-opted-out'], [RELEASE_NS, 'annotated-in-release-ns']] as const) {
    assertNotInjected(await getJson('pod', name, '-n', ns))
  }
  const system = (await getJson('pods', '-n', 'kube-system')).items
  for (const p of system) assertNotInjected(p)
  const after = await webhookAdmissions()
  expect(after === before, `the webhook was called for an excluded namespace (admissions ${before} → ${after})`)
  return `kube-system (${system.length} pods), labelled namespace "legacy" and ${RELEASE_NS}: stored unchanged, webhook not called`
}

async function checkUpgrade (): Promise<string> {
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
  const config = parseYaml(readFileSync(injectionConfigFile, 'utf8'))
  expect(config.logLevel === 'debug', `the upgraded ConfigMap has logLevel ${String(config.logLevel)}`)
  await sleep(3000) // the injector checks its files every second (--reload-interval 1)
  await kubectl('apply', '-f', join(ROOT, 'e2e', 'manifests', 'after-upgrade-pod.yaml'))
  const p = await getJson('pod', 'after-upgrade', '-n', APP_NS)
  const summary = assertInjected(p, { native: true, models: 'iris' })
  const args = (sidecarOf(p)?.container.args ?? []).join(' ')
  expect(/--log-level[ =]debug/.test(args), `the upgraded sidecar.logLevel did not reach the new pod: ${args}`)
  return `revision ${String(revBefore)} → ${String(revAfter)}; CA and caBundle unchanged, serving certificate ${certKept ? 'unchanged' : 're-issued by the same CA'}; ${summary}; sidecar.logLevel=debug reached it`
}

interface Heldout { raw_features: number[][], expected_label: number[], labels: string[] }

function heldout (): Heldout {
  return JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'models', 'iris-heldout.json'), 'utf8'))
}

/** Runs a stored recommender pod (either Deployment) with this checkout standing in for the images. */
async function emulate (stored: Json): Promise<RunningPod> {
  if (pod !== undefined) {
    // One pod at a time: both use the same ports (8080, 8500, 8501, 9464) on this host.
    await pod.stop()
    pod = undefined
  }
  const cli = [process.execPath, join(ROOT, 'dist', 'cli', 'main.js')]
  pod = await runPod(stored, {
    images: {
      // the onnx-sidecar image: ENTRYPOINT ["onnx-sidecar"] → this checkout's CLI
      [imageRepository(sidecarOf(stored)?.container.image)]: { entrypoint: cli, executables: { 'onnx-sidecar': cli } },
      // the example app's image: Node.js with app/server.mjs at /app
      'registry.example.com/shop/recommender': { executables: { node: [process.execPath] }, files: { '/app': join(ROOT, 'examples', 'recommender', 'app') } }
    },
    volumes: { '/models': join(ROOT, 'models') },
    workDir: work,
    logDir,
    baseEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', NO_PROXY: baseEnv.NO_PROXY ?? '' },
    startupTimeoutMs: 90_000
  })
  return pod
}

/** The 45 held-out flowers through the app's GET /recommendations, then a batch of 10 through POST. */
async function classifyThroughApp (appPort: number): Promise<string> {
  const held = heldout()
  const names = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width']
  for (let i = 0; i < held.raw_features.length; i++) {
    const q = new URLSearchParams(names.map((n, j): [string, string] => [n, String(held.raw_features[i]?.[j])]))
    const res = await fetch(`http://127.0.0.1:${appPort}/recommendations?${q.toString()}`)
    const body = await res.json() as Json
    expect(res.status === 200, `GET /recommendations answered ${res.status}: ${JSON.stringify(body)}`)
    const want = held.labels[held.expected_label[i] as number]
    expect(body.species === want, `row ${i}: recommender said ${String(body.species)}, the model's expected label is ${String(want)}`)
    expect(Array.isArray(body.products) && body.products.length > 0, `row ${i}: no products`)
  }
  const batch = held.raw_features.slice(0, 10)
  const res = await fetch(`http://127.0.0.1:${appPort}/recommendations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ flowers: batch }) })
  const body = await res.json() as Json
  expect(res.status === 200 && body.results.length === 10, `POST /recommendations: ${res.status} ${JSON.stringify(body)}`)
  body.results.forEach((r: Json, i: number) => { expect(r.species === held.labels[held.expected_label[i] as number], `batch row ${i}: ${String(r.species)}`) })
  return `${held.raw_features.length}/${held.raw_features.length} held-out flowers and a batch of 10 classified right`
}

/** The running app and sidecar of the emulated pod, their pids and ports. */
function podProcesses (running: RunningPod, stored: Json): { app: Json, appPid: number, sidecarPid: number, appPort: number, inferencePort: number, env: Record<string, string> } {
  const app = stored.spec.containers.find((c: Json) => c.name === 'recommender')
  const appRun = running.containers.find(c => c.name === 'recommender')
  const sidecarRun = running.containers.find(c => c.name === SIDECAR)
  expect(appRun?.service.child.pid !== undefined && sidecarRun?.service.child.pid !== undefined, 'the app or the sidecar has no process')
  return {
    app,
    appPid: appRun.service.child.pid,
    sidecarPid: sidecarRun.service.child.pid,
    appPort: app.ports[0].containerPort as number,
    inferencePort: Number(new URL(String(envOf(app, 'ONNX_SIDECAR_URL'))).port),
    env: appRun.env
  }
}

/** The app's own word on how its SidecarClient reaches the sidecar (GET /healthz → sidecar). */
async function appTransport (appPort: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${appPort}/healthz`)
  const body = await res.json() as Json
  expect(res.status === 200 && body.ready === true, `GET /healthz answered ${res.status}: ${JSON.stringify(body)}`)
  expect(typeof body.sidecar === 'string', `GET /healthz does not say how the app reaches the sidecar: ${JSON.stringify(body)}`)
  return body.sidecar
}

async function inferenceCount (metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
  let n = 0
  for (const [k, v] of parseMetrics(text)) if (k.startsWith('onnx_sidecar_inference_requests_total{') && k.includes('model="iris"') && k.includes('code="200"')) n += v
  return n
}

async function checkPodEmulation (): Promise<string> {
  const stored = (await deploymentPods())[0]
  expect(stored !== undefined, 'no recommender pod to run')
  const running = await emulate(stored)
  const { appPid, appPort, inferencePort, env } = podProcesses(running, stored)
  const transport = await appTransport(appPort)
  expect(transport === env.ONNX_SIDECAR_URL, `the app reaches the sidecar through ${transport}, not its ONNX_SIDECAR_URL ${String(env.ONNX_SIDECAR_URL)}`)
  const classified = await classifyThroughApp(appPort)
  // Keep-alive connections stay open after the requests: the app's TCP connections to the sidecar.
  const tcp = processSockets(appPid).tcp.filter(t => t.state === '01' && t.remotePort === inferencePort)
  expect(tcp.length > 0, `the app has no TCP connection to the sidecar's port ${inferencePort}`)
  return `pod ${String(stored.metadata.name)}: ${running.containers.map(c => c.name).join(' + ')} running; ${classified} through $ONNX_SIDECAR_URL; ` +
    `the app says sidecar ${transport} and holds ${tcp.length} TCP connection(s) to 127.0.0.1:${inferencePort}`
}

/** The socket variant: the same app, whose client finds $ONNX_SIDECAR_SOCKET and uses it. */
async function checkSocketPodEmulation (): Promise<string> {
  const stored = (await deploymentPods('recommender-socket'))[0]
  expect(stored !== undefined, 'no recommender-socket pod to run')
  const metricsPort = Number(stored.metadata.annotations['prometheus.io/port'])
  const running = await emulate(stored)
  const { appPid, sidecarPid, appPort, inferencePort, env } = podProcesses(running, stored)
  // The socket volume is a local directory here; the app's variables point into it.
  const dir = running.volumes[SOCKET_VOLUME]
  expect(dir !== undefined, `the emulation has no directory for volume ${SOCKET_VOLUME}`)
  const httpSock = join(dir, 'http.sock')
  const grpcSock = join(dir, 'grpc.sock')
  expect(env.ONNX_SIDECAR_SOCKET === httpSock && env.ONNX_SIDECAR_GRPC_SOCKET === grpcSock, `the app's ONNX_SIDECAR_SOCKET/ONNX_SIDECAR_GRPC_SOCKET (${String(env.ONNX_SIDECAR_SOCKET)}, ${String(env.ONNX_SIDECAR_GRPC_SOCKET)}) are not in the socket volume ${dir}`)
  expect(Buffer.byteLength(grpcSock) < 108, `socket path ${grpcSock} is longer than a Unix socket address allows (107 bytes): use a shorter TMPDIR`)
  for (const f of [httpSock, grpcSock]) {
    const st = lstatSync(f, { throwIfNoEntry: false })
    expect(st?.isSocket() === true, `${f} is not a socket (the sidecar should have made it from --socket-dir)`)
    expect((st.mode & 0o777) === 0o660, `${f} has mode ${(st.mode & 0o777).toString(8)}, wanted 660`)
  }
  const transport = await appTransport(appPort)
  expect(transport === `unix:${httpSock}`, `the app reaches the sidecar through ${transport}, not unix:${httpSock}`)
  const before = await inferenceCount(metricsPort)
  const classified = await classifyThroughApp(appPort)
  const served = await inferenceCount(metricsPort) - before
  expect(served >= 46, `the sidecar counted ${served} iris inferences for the app's 46 requests`)
  // What the kernel says, while the app's keep-alive connections are still open: the
  // sidecar has accepted connections on http.sock, the app holds connected Unix sockets,
  // and neither has a TCP connection on the inference port (which still listens).
  const appSockets = processSockets(appPid)
  const sidecarSockets = processSockets(sidecarPid)
  const accepted = sidecarSockets.unix.filter(u => u.path === httpSock && u.connected)
  const appUnix = appSockets.unix.filter(u => u.connected && u.path === '')
  const appTcp = appSockets.tcp.filter(t => t.remotePort === inferencePort)
  const sidecarTcp = sidecarSockets.tcp.filter(t => t.localPort === inferencePort && t.state !== '0A')
  expect(sidecarSockets.tcp.some(t => t.localPort === inferencePort && t.state === '0A'), `the sidecar does not listen on TCP ${inferencePort} (TCP should stay alongside the socket)`)
  expect(accepted.length > 0, `the sidecar has no accepted connection on ${httpSock}`)
  expect(appUnix.length > 0, 'the app holds no connected Unix socket')
  expect(appTcp.length === 0, `the app has ${appTcp.length} TCP connection(s) to the sidecar's port ${inferencePort}`)
  expect(sidecarTcp.length === 0, `the sidecar has ${sidecarTcp.length} TCP connection(s) on port ${inferencePort}`)
  return `pod ${String(stored.metadata.name)}: ${running.containers.map(c => c.name).join(' + ')} running, ${httpSock} and grpc.sock mode 0660; ${classified}; ` +
    `the app says sidecar ${transport}; the sidecar counted ${served} inferences; /proc: ${accepted.length} connection(s) accepted on http.sock, the app holds ${appUnix.length} Unix and 0 TCP connections to the sidecar, port ${inferencePort} listening with no connection`
}

/** gRPC as an app would use it: the pod's ONNX_SIDECAR_GRPC_ADDRESS, and unix:// + ONNX_SIDECAR_GRPC_SOCKET. */
async function checkGrpc (): Promise<string> {
  expect(pod !== undefined, 'no pod running')
  const stored = (await deploymentPods('recommender-socket'))[0]
  const { env } = podProcesses(pod, stored)
  const grpc = await import('@grpc/grpc-js')
  const loader = await import('@grpc/proto-loader')
  const definition = await loader.load(join(ROOT, 'sidecar', 'grpc', 'oip.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true })
  const GrpcInference = (grpc.loadPackageDefinition(definition) as Json).inference.GRPCInferenceService
  const held = heldout()
  const lines: string[] = []
  for (const target of [String(env.ONNX_SIDECAR_GRPC_ADDRESS), `unix://${String(env.ONNX_SIDECAR_GRPC_SOCKET)}`]) {
    const client = new GrpcInference(target, grpc.credentials.createInsecure())
    try {
      const call = async (method: string, req: object): Promise<Json> => await new Promise((resolve, reject) => {
        client[method](req, { deadline: Date.now() + 10_000 }, (err: Error | null, res: Json) => { err === null ? resolve(res) : reject(new Error(`${target} ${method}: ${err.message}`)) })
      })
      const ready = await call('ServerReady', {})
      expect(ready.ready === true, `${target}: ServerReady says ${JSON.stringify(ready)}`)
      // Three calls of 15 rows (the iris model's max_batch_size is 32).
      const labels: number[] = []
      for (let from = 0; from < held.raw_features.length; from += 15) {
        const rows = held.raw_features.slice(from, from + 15)
        const res = await call('ModelInfer', {
          model_name: 'iris',
          inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 4], contents: { fp32_contents: rows.flat() } }],
          outputs: [{ name: 'label' }]
        })
        const i = res.outputs.findIndex((o: Json) => o.name === 'label')
        expect(i >= 0 && res.outputs[i].datatype === 'INT64', `${target}: no INT64 label output: ${JSON.stringify(res.outputs)}`)
        const raw = Buffer.from(res.raw_output_contents[i])
        for (let k = 0; k < raw.length / 8; k++) labels.push(Number(raw.readBigInt64LE(k * 8)))
      }
      expect(JSON.stringify(labels) === JSON.stringify(held.expected_label), `${target}: labels ${JSON.stringify(labels)}, expected ${JSON.stringify(held.expected_label)}`)
      lines.push(`${target}: ServerReady; ModelInfer classified ${labels.length}/${held.expected_label.length} held-out rows right`)
    } finally {
      client.close()
    }
  }
  return lines.join('\n')
}

async function checkPrometheus (): Promise<string> {
  const stored = (await deploymentPods())[0]
  const ann = stored.metadata.annotations
  expect(ann['prometheus.io/scrape'] === 'true', 'pod is not marked prometheus.io/scrape')
  const promPort = await freePort()
  // What Prometheus' kubernetes_sd + the usual relabelling would produce for this pod.
  const config = {
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    scrape_configs: [{
      job_name: 'kubernetes-pods',
      metrics_path: ann['prometheus.io/path'] ?? '/metrics',
      scheme: ann['prometheus.io/scheme'] ?? 'http',
      static_configs: [{ targets: [`127.0.0.1:${String(ann['prometheus.io/port'])}`], labels: { namespace: stored.metadata.namespace, pod: stored.metadata.name } }]
    }]
  }
  const file = join(work, 'prometheus.yml')
  writeFileSync(file, toYaml(config))
  prometheus = startService('prometheus', 'prometheus', [`--config.file=${file}`, `--storage.tsdb.path=${join(work, 'prometheus')}`,
    `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { logDir, env: baseEnv })
  const query = async (q: string): Promise<Json[]> => {
    failIfExited(prometheus as Service)
    const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`)
    const body = await res.json() as Json
    if (body.status !== 'success') throw new Error(`query ${q}: ${JSON.stringify(body)}`)
    return body.data.result
  }
  await waitFor('Prometheus target up', async () => {
    const r = await query('up{job="kubernetes-pods"}')
    return r[0]?.value?.[1] === '1'
  }, { timeoutMs: 60_000 })
  const series = await waitFor('onnx_sidecar_inference_requests_total in Prometheus', async () => {
    const r = await query(`onnx_sidecar_inference_requests_total{model="iris",pod="${String(stored.metadata.name)}"}`)
    const ok = r.find((s: Json) => s.metric.code === '200')
    return ok !== undefined && Number(ok.value[1]) >= 46 ? r : undefined
  }, { timeoutMs: 60_000 })
  const hist = await query('sum(onnx_sidecar_inference_request_duration_seconds_count{model="iris"})')
  expect(Number(hist[0]?.value?.[1] ?? 0) >= 46, 'onnx_sidecar_inference_request_duration_seconds has no observations')
  return series.map((s: Json) => `onnx_sidecar_inference_requests_total{model="${String(s.metric.model)}",version="${String(s.metric.version)}",code="${String(s.metric.code)}"} ${String(s.value[1])}`).join('\n')
}

// ---------------------------------------------------------------- main

async function main (): Promise<number> {
  log(`work directory ${work}`)
  let ready = await check('control plane, helm and prometheus binaries are built (cached outside the repo)', async () => {
    await buildTools()
    return `control plane in ${bin}; helm ${helmBin}`
  })
  ready = ready && await check('etcd, kube-apiserver and kube-controller-manager run on loopback', startControlPlane)
  if (ready) {
    const installed = await check('helm install the chart with webhook.url pointing at a local injector', installChart)
    const configured = installed && await check('the chart renders an injection config for the injector', extractInjectionConfig)
    if (!configured) await registerWithoutChart()
  }
  ready = ready && await check('onnx-sidecar webhook runs locally over TLS with the chart\'s certificate and config', startWebhook)
  if (ready) {
    await check('the MutatingWebhookConfiguration: caBundle, failurePolicy, matchConditions, excluded namespaces', checkRegistration)
    const deployed = await check('an annotated Deployment: the pods kube-controller-manager creates are stored injected', async () => {
      await kubectl('create', 'namespace', APP_NS)
      await waitForDefaultSa(APP_NS)
      return await checkDeployment()
    })
    const socketDeployed = await check('onnx-sidecar.io/socket: "true" with fsGroup: the stored pod has the socket volume, mounts, --socket-dir and variables', checkSocketDeployment)
    await check('a bare annotated Pod is injected (regular sidecar container, annotations applied)', checkBarePod)
    await check('a pod without the annotation is stored unchanged and the webhook is never called', checkPlainPod)
    await check('a pod with onnx-sidecar.io/inject: "false" is stored unchanged and the webhook is never called', checkOptedOut)
    await check('an invalid annotation is rejected and kubectl shows why', checkInvalid)
    await check('kube-system, opted-out and the release namespace are not touched', checkExcluded)
    await check('helm upgrade keeps the CA and injection keeps working', checkUpgrade)
    if (deployed) {
      const running = await check('pod emulation: the stored pod\'s sidecar and app run, the app gets the right predictions over TCP', checkPodEmulation)
      if (running) await check('Prometheus scrapes the sidecar via the pod\'s prometheus.io/* annotations', checkPrometheus)
    }
    if (socketDeployed) {
      const running = await check('pod emulation with sockets: the app\'s requests go over the Unix socket, not TCP, and get the right predictions', checkSocketPodEmulation)
      if (running) await check('gRPC on the pod\'s ONNX_SIDECAR_GRPC_ADDRESS and unix://$ONNX_SIDECAR_GRPC_SOCKET', checkGrpc)
    }
  }
  const failed = results.filter(r => !r.ok).length
  const passed = results.length - failed
  if (failed > 0) {
    log('last lines of each log (all logs are kept in the work directory):')
    for (const f of readdirSync(logDir).sort().map(n => join(logDir, n))) {
      if (existsSync(f)) process.stdout.write(`# --- ${f}\n${tail(f, 15).split('\n').map(l => `#   ${l}`).join('\n')}\n`)
    }
  }
  process.stdout.write(`# e2e took ${((Date.now() - STARTED) / 1000).toFixed(0)}s\n`)
  process.stdout.write(`e2e: ${passed} passed, ${failed} failed\n`)
  return failed > 0 ? 1 : 0
}

let cleaning = false
async function cleanup (code: number): Promise<void> {
  if (cleaning) return
  cleaning = true
  if (pod !== undefined) await pod.stop()
  await stopAll()
  if (code === 0 && process.env.E2E_KEEP !== '1') rmSync(work, { recursive: true, force: true })
  else log(`kept ${work} (kubeconfig, logs/)`)
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { cleanup(130).finally(() => process.exit(130)) })
}

process.on('uncaughtException', (err) => {
  process.stdout.write(`not ok - harness error: ${err.stack ?? String(err)}\n`)
  cleanup(1).finally(() => process.exit(1))
})

main().then(async code => {
  await cleanup(code)
  process.exit(code)
}, async (err: unknown) => {
  process.stdout.write(`not ok - harness error: ${(err as Error).stack ?? String(err)}\n`)
  await cleanup(1)
  process.exit(1)
})
