/**
 * One real node on this machine: containerd v2 (CRI, runc, overlayfs), a bridge CNI
 * network that exists only here (10.244.0.0/24, the host is 10.244.0.1), and a kubelet
 * registered as `e2e-node`. Settings these machines need, and why:
 * - kubelet `failCgroupV1: false`: the machines run cgroup v1 (hybrid), which Kubernetes
 *   1.35+ refuses unless told; `cgroupDriver: cgroupfs`: there is no systemd to ask;
 *   `failSwapOn: false`: do not depend on the machine's swap setting.
 * - containerd CRI `restrict_oom_score_adj = true`: these VMs do not let a process lower
 *   its OOM score; without it every sandbox fails with "can't get final child's PID
 *   from pipe: EOF" (runc's debug log says why).
 * - the sandbox ("pause") image cannot be pulled: it is the pause binary of the same
 *   Kubernetes module, built static (e2e/build-node.sh), in a FROM scratch image that
 *   is imported and pinned as containerd's sandbox image.
 * - eviction thresholds at 1 % of disk and images never garbage-collected: the test's
 *   node shares a disk with everything else on the machine and must not evict for it.
 * - the node IP is the bridge's own address, made before the kubelet starts, so the
 *   API server reaches the kubelet (logs) and Prometheus reaches pods without touching
 *   the machine's real network.
 */
import { writeFileSync, mkdirSync, readFileSync, existsSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { stringify as toYaml } from 'yaml'
import { startService, stopService, failIfExited, run, runOk, waitFor, freePort, makeLeaf, log, type Service } from './lib.js'
import { ctx, baseEnv, logDir, pki, work, tool, getJson, NODE_NAME } from './context.js'
import { ca, kubeletKubeconfig } from './control-plane.js'

export const BRIDGE = 'oxs-e2e0'
export const NODE_IP = '10.244.0.1'
const POD_SUBNET = '10.244.0.0/24'
/** Debian's containernetworking-plugins */
const CNI_BIN = '/usr/lib/cni'
export const PAUSE_IMAGE = 'localhost/onnx-sidecar-e2e/pause:e2e'

const dirs = {
  containerd: join(work, 'ctrd'),
  cni: join(work, 'cni'),
  kubelet: join(work, 'kubelet')
}
const containerdSock = join(dirs.containerd, 'c.sock')

let containerd: Service | undefined
let kubelet: Service | undefined

function path (): string {
  return [ctx.nodeBin, process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'].join(':')
}

/** The kubelet's root directory: pods' volumes live under <root>/pods/<uid>/volumes. */
export function kubeletRoot (): string { return join(dirs.kubelet, 'root') }

export async function ctr (...args: string[]): Promise<string> {
  return await runOk(join(ctx.nodeBin, 'ctr'), ['--address', containerdSock, '--namespace', 'k8s.io', ...args], { env: { ...baseEnv, PATH: path() }, timeoutMs: 600_000 })
}

/** The bridge, with the host's address on it, before any pod: the node IP. */
async function makeBridge (): Promise<void> {
  await run('ip', ['link', 'del', BRIDGE])
  await runOk('ip', ['link', 'add', BRIDGE, 'type', 'bridge'])
  await runOk('ip', ['addr', 'add', `${NODE_IP}/24`, 'dev', BRIDGE])
  await runOk('ip', ['link', 'set', BRIDGE, 'up'])
}

function writeCniConfig (): void {
  mkdirSync(join(dirs.cni, 'net.d'), { recursive: true })
  writeFileSync(join(dirs.cni, 'net.d', '10-e2e.conflist'), JSON.stringify({
    cniVersion: '1.0.0',
    name: 'onnx-sidecar-e2e',
    plugins: [{
      type: 'bridge',
      bridge: BRIDGE,
      isGateway: true,
      // pods reach Service IPs (kube-proxy) through the host: a default route via the bridge
      isDefaultGateway: true,
      ipMasq: false,
      hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: POD_SUBNET, gateway: NODE_IP }]], dataDir: join(dirs.cni, 'ipam') }
    }]
  }, null, 2))
}

function writeContainerdConfig (): string {
  const file = join(dirs.containerd, 'config.toml')
  const registryHosts = join(dirs.containerd, 'certs.d')
  mkdirSync(registryHosts, { recursive: true })
  writeFileSync(file, `version = 3
root = "${join(dirs.containerd, 'root')}"
state = "${join(dirs.containerd, 'state')}"

[grpc]
  address = "${containerdSock}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '${PAUSE_IMAGE}'
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = '${registryHosts}'

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '/usr/sbin/runc'
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['${CNI_BIN}']
    conf_dir = '${join(dirs.cni, 'net.d')}'

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
`)
  return registryHosts
}

/** Lets containerd pull from the local registry over plain HTTP (127.0.0.1 only). */
export function trustRegistry (hostPort: string): void {
  const dir = join(dirs.containerd, 'certs.d', hostPort)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'hosts.toml'), `server = "http://${hostPort}"\n\n[host."http://${hostPort}"]\n  capabilities = ["pull", "resolve"]\n`)
}

export async function startContainerd (): Promise<string> {
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true })
  writeCniConfig()
  writeContainerdConfig()
  await makeBridge()
  containerd = startService('containerd', join(ctx.nodeBin, 'containerd'), ['--config', join(dirs.containerd, 'config.toml'), '--log-level', 'warn'],
    { logDir, env: { ...baseEnv, PATH: path() } })
  await waitFor('containerd', async () => {
    failIfExited(containerd as Service)
    return (await run(join(ctx.nodeBin, 'ctr'), ['--address', containerdSock, 'version'], { env: baseEnv })).code === 0
  }, { timeoutMs: 60_000 })
  const version = (await runOk(join(ctx.nodeBin, 'containerd'), ['--version'])).trim()
  return `${version}; runc ${(await runOk('/usr/sbin/runc', ['--version'])).split('\n')[0]?.replace('runc version ', '') ?? '?'}; CNI bridge ${BRIDGE} ${POD_SUBNET}`
}

/** podman's copy of an image → containerd's k8s.io namespace, under `name`. */
export async function importFromPodman (local: string, name: string): Promise<void> {
  if (local !== name) await runOk('podman', ['tag', local, name])
  const archive = join(work, `image-${name.replace(/[^a-z0-9]+/gi, '-')}.tar`)
  // docker-archive keeps the full name (RepoTags), which ctr imports as it is.
  await runOk('podman', ['save', '--format', 'docker-archive', '-o', archive, name], { timeoutMs: 600_000 })
  await ctr('images', 'import', archive)
  await runOk('rm', ['-f', archive])
}

/** podman build as these machines run it: runc (crun fails here), explicit ulimits, the host's network. */
export const PODMAN_BUILD = ['build', '--runtime', 'runc', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=4096:4096', '--network', 'host']

/** The sandbox image: the static pause binary alone, FROM scratch. */
export async function importPauseImage (): Promise<void> {
  const ctxDir = join(work, 'pause-image')
  mkdirSync(ctxDir, { recursive: true })
  writeFileSync(join(ctxDir, 'pause'), readFileSync(join(ctx.nodeBin, 'pause')))
  chmodSync(join(ctxDir, 'pause'), 0o755)
  writeFileSync(join(ctxDir, 'Containerfile'), 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n')
  await runOk('podman', [...PODMAN_BUILD, '--tag', PAUSE_IMAGE, ctxDir], { timeoutMs: 300_000 })
  await importFromPodman(PAUSE_IMAGE, PAUSE_IMAGE)
}

export async function startKubelet (): Promise<string> {
  const serving = await makeLeaf(pki, 'kubelet-serving', ca, `/O=system:nodes/CN=system:node:${NODE_NAME}`, 'serverAuth', [`IP:${NODE_IP}`, `DNS:${NODE_NAME}`])
  const kubeconfig = await kubeletKubeconfig()
  const config = join(dirs.kubelet, 'config.yaml')
  writeFileSync(config, toYaml({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${containerdSock}`,
    address: NODE_IP,
    port: await freePort(),
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: await freePort(),
    tlsCertFile: serving.cert,
    tlsPrivateKeyFile: serving.key,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: ca.cert } },
    authorization: { mode: 'Webhook' },
    clusterDomain: 'cluster.local',
    // CoreDNS on the node IP (cluster-services.ts)
    clusterDNS: [NODE_IP],
    resolvConf: '/etc/resolv.conf',
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'nodefs.inodesFree': '1%', 'imagefs.available': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    // Volumes refresh quickly (the injector's config reload is not what is tested here).
    syncFrequency: '10s',
    volumePluginDir: join(dirs.kubelet, 'volume-plugins'),
    shutdownGracePeriod: '0s'
  }))
  kubelet = startService('kubelet', tool('kubelet'), [
    `--config=${config}`, `--kubeconfig=${kubeconfig}`, `--root-dir=${kubeletRoot()}`,
    `--hostname-override=${NODE_NAME}`, `--node-ip=${NODE_IP}`, '--v=1'
  ], { logDir, env: { ...baseEnv, PATH: path() } })
  const node = await waitFor(`node ${NODE_NAME} Ready`, async () => {
    failIfExited(kubelet as Service)
    failIfExited(containerd as Service)
    const list = (await getJson('nodes')).items
    const n = list.find((x: { metadata: { name: string } }) => x.metadata.name === NODE_NAME)
    const ready = n?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready')
    return ready?.status === 'True' ? n : undefined
  }, { timeoutMs: 180_000 })
  const info = node.status.nodeInfo
  return `node ${NODE_NAME} Ready at ${NODE_IP}: kubelet ${String(info.kubeletVersion)}, ${String(info.containerRuntimeVersion)}, cpu ${String(node.status.allocatable.cpu)}, memory ${String(node.status.allocatable.memory)}`
}

/** Everything the node started, gone: pods' processes, mounts, the bridge. */
export async function stopNode (): Promise<void> {
  if (kubelet !== undefined) await stopService(kubelet, 10_000)
  if (containerd !== undefined && !containerd.exited) {
    const tasks = await run(join(ctx.nodeBin, 'ctr'), ['--address', containerdSock, '--namespace', 'k8s.io', 'tasks', 'ls', '-q'], { env: baseEnv })
    for (const id of tasks.stdout.split('\n').filter(Boolean)) {
      await run(join(ctx.nodeBin, 'ctr'), ['--address', containerdSock, '--namespace', 'k8s.io', 'tasks', 'kill', '-s', 'SIGKILL', id], { env: baseEnv })
    }
    await stopService(containerd, 10_000)
  }
  // Shims outlive containerd by design; ours are the ones that talk to our socket.
  await run('pkill', ['-KILL', '-f', `containerd-shim-runc-v2 .*${containerdSock}`])
  if (existsSync('/proc/self/mounts')) {
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map(l => l.split(' ')[1] ?? '')
      .filter(m => m.startsWith(work)).sort((a, b) => b.length - a.length)
    for (const m of mounts) await run('umount', ['-l', m.replace(/\\040/g, ' ')])
  }
  await run('ip', ['link', 'del', BRIDGE])
  log('node stopped: kubelet, containerd, shims, mounts and the bridge')
}
