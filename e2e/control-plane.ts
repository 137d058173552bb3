/**
 * The control plane: etcd, kube-apiserver, kube-controller-manager and kube-scheduler on
 * loopback, with generated certificates, client-certificate auth, the Node and RBAC
 * authorizers, Pod Security admission and a service-account key.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify as toYaml } from 'yaml'
import { startService, failIfExited, runOk, run, waitFor, freePort, makeCa, makeLeaf, type CertFiles } from './lib.js'
import { ROOT, baseEnv, ctx, logDir, pki, work, tool, kubectl, kubectlRaw, NODE_NAME } from './context.js'

/** Builds (or finds in the cache) every binary the test runs. */
export async function buildTools (): Promise<string> {
  const script = async (path: string, timeoutMs: number): Promise<string> => {
    const r = await run('bash', [join(ROOT, path)], { timeoutMs, env: baseEnv })
    if (r.code !== 0) throw new Error(`${path} failed:\n${r.stderr.split('\n').slice(-30).join('\n')}`)
    return r.stdout.trim().split('\n').pop() ?? ''
  }
  ctx.k8sBin = await script('e2e/build-control-plane.sh', 90 * 60_000)
  ctx.nodeBin = await script('e2e/build-node.sh', 60 * 60_000)
  ctx.helmBin = await script('scripts/ensure-helm.sh', 30 * 60_000)
  return `Kubernetes in ${ctx.k8sBin}; containerd, registry and prometheus in ${ctx.nodeBin}; helm ${ctx.helmBin}`
}

export let ca: CertFiles
let saKey = ''

function writeKubeconfig (file: string, user: CertFiles): void {
  writeFileSync(file, toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'e2e', cluster: { server: `https://127.0.0.1:${ctx.apiPort}`, 'certificate-authority': ca.cert } }],
    users: [{ name: 'e2e', user: { 'client-certificate': user.cert, 'client-key': user.key } }],
    contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'e2e' } }],
    'current-context': 'e2e'
  }))
}

/** A kubeconfig for one component, with a client certificate for `subject`. */
export async function componentKubeconfig (name: string, subject: string): Promise<string> {
  const cert = await makeLeaf(pki, name, ca, subject, 'clientAuth')
  const file = join(work, `${name}.kubeconfig`)
  writeKubeconfig(file, cert)
  return file
}

export async function startControlPlane (): Promise<string> {
  ca = await makeCa(pki, 'ca', 'onnx-sidecar-e2e-ca')
  const serving = await makeLeaf(pki, 'apiserver', ca, '/CN=kube-apiserver', 'serverAuth',
    ['IP:127.0.0.1', 'IP:10.0.0.1', 'DNS:localhost', 'DNS:kubernetes', 'DNS:kubernetes.default', 'DNS:kubernetes.default.svc', 'DNS:kubernetes.default.svc.cluster.local'])
  // The API server's identity towards kubelets (logs, exec, port-forward).
  const kubeletClient = await makeLeaf(pki, 'apiserver-kubelet-client', ca, '/O=system:masters/CN=kube-apiserver-kubelet-client', 'clientAuth')
  saKey = join(pki, 'sa.key')
  const saPub = join(pki, 'sa.pub')
  await runOk('openssl', ['genrsa', '-out', saKey, '2048'])
  await runOk('openssl', ['rsa', '-in', saKey, '-pubout', '-out', saPub])

  const [etcdPort, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()]
  ctx.apiPort = apiPort
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
    `--kubelet-client-certificate=${kubeletClient.cert}`, `--kubelet-client-key=${kubeletClient.key}`,
    `--kubelet-certificate-authority=${ca.cert}`, '--kubelet-preferred-address-types=InternalIP',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${saPub}`, `--service-account-signing-key-file=${saKey}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    // Node: the kubelet may read only what its pods need; RBAC for everybody else.
    '--authorization-mode=Node,RBAC',
    // PodSecurity is on by default; listed to say that the namespace labels are enforced.
    '--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,NodeRestriction,PodSecurity,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota',
    '--profiling=false', '--v=1'
  ], { logDir, env: baseEnv })

  const admin = await makeLeaf(pki, 'admin', ca, '/O=system:masters/CN=e2e-admin', 'clientAuth')
  ctx.kubeconfig = join(work, 'kubeconfig')
  writeKubeconfig(ctx.kubeconfig, admin)

  await waitFor('kube-apiserver /readyz', async () => {
    failIfExited(apiserver)
    const r = await kubectlRaw(['get', '--raw', '/readyz'])
    if (r.code !== 0) throw new Error(r.stderr.trim())
    return r.stdout.trim() === 'ok'
  }, { timeoutMs: 120_000 })

  const kcmKubeconfig = await componentKubeconfig('controller-manager', '/O=system:masters/CN=system:kube-controller-manager')
  const kcm = startService('kube-controller-manager', tool('kube-controller-manager'), [
    `--kubeconfig=${kcmKubeconfig}`,
    `--authentication-kubeconfig=${kcmKubeconfig}`, `--authorization-kubeconfig=${kcmKubeconfig}`,
    '--bind-address=127.0.0.1', `--secure-port=${await freePort()}`, `--cert-dir=${join(work, 'controller-manager')}`,
    '--leader-elect=false',
    `--service-account-private-key-file=${saKey}`, `--root-ca-file=${ca.cert}`,
    '--use-service-account-credentials=false',
    // One node on a shared machine: a slow status update must not evict its pods.
    '--node-monitor-grace-period=2m',
    '--v=1'
  ], { logDir, env: baseEnv })

  // The scheduler with its own identity: RBAC's built-in system:kube-scheduler role.
  const schedKubeconfig = await componentKubeconfig('scheduler', '/CN=system:kube-scheduler')
  const scheduler = startService('kube-scheduler', tool('kube-scheduler'), [
    `--kubeconfig=${schedKubeconfig}`,
    `--authentication-kubeconfig=${schedKubeconfig}`, `--authorization-kubeconfig=${schedKubeconfig}`,
    '--bind-address=127.0.0.1', `--secure-port=${await freePort()}`, `--cert-dir=${join(work, 'scheduler')}`,
    '--leader-elect=false', '--v=1'
  ], { logDir, env: baseEnv })

  // The service-account controller creating "default" shows the controllers run.
  await waitFor('kube-controller-manager (default service account)', async () => {
    failIfExited(kcm)
    failIfExited(scheduler)
    return (await kubectlRaw(['get', 'serviceaccount', 'default', '-n', 'default'])).code === 0
  }, { timeoutMs: 120_000 })
  const version = JSON.parse(await kubectl('version', '-o', 'json'))
  return `kube-apiserver ${String(version.serverVersion?.gitVersion)} on 127.0.0.1:${apiPort} (Node,RBAC; PodSecurity), etcd on :${etcdPort}, controller-manager and scheduler; work dir ${work}`
}

/** The kubelet's client identity: system:node:<name> in system:nodes, what the Node authorizer expects. */
export async function kubeletKubeconfig (): Promise<string> {
  return await componentKubeconfig('kubelet', `/O=system:nodes/CN=system:node:${NODE_NAME}`)
}
