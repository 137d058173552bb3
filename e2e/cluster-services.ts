/**
 * What makes Services work on the node, as on any cluster: kube-proxy (iptables mode)
 * turns a Service's cluster IP into its ready pods, and CoreDNS (e2e/coredns, the
 * kubernetes plugin) answers `<service>.<namespace>.svc.cluster.local`. Both run as host
 * processes of the node; the kubelet points pods at CoreDNS on the node IP.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify as toYaml } from 'yaml'
import { startService, failIfExited, run, waitFor, freePort, type Service } from './lib.js'
import { ctx, baseEnv, logDir, work, tool, NODE_NAME } from './context.js'
import { componentKubeconfig } from './control-plane.js'
import { NODE_IP } from './node.js'

export const CLUSTER_DOMAIN = 'cluster.local'
const POD_CIDR = '10.244.0.0/16'

let proxy: Service | undefined

/** CoreDNS on <node IP>:53, serving the cluster domain from the API server. */
export async function startDns (): Promise<string> {
  const corefile = join(work, 'Corefile')
  writeFileSync(corefile, `${CLUSTER_DOMAIN}:53 {
  bind ${NODE_IP}
  errors
  cache 5
  kubernetes ${CLUSTER_DOMAIN} {
    kubeconfig ${ctx.kubeconfig} e2e
  }
}
`)
  const dns = startService('coredns', join(ctx.nodeBin, 'coredns'), ['-conf', corefile], { logDir, env: baseEnv })
  // The API server's own Service always exists.
  await waitFor('CoreDNS answers kubernetes.default', async () => {
    failIfExited(dns)
    return (await dig(`kubernetes.default.svc.${CLUSTER_DOMAIN}`)) !== undefined
  }, { timeoutMs: 60_000 })
  return `CoreDNS on ${NODE_IP}:53 for ${CLUSTER_DOMAIN}: kubernetes.default.svc → ${String(await dig(`kubernetes.default.svc.${CLUSTER_DOMAIN}`))}`
}

/** One A record from CoreDNS, asked directly (the node's own resolver does not know the cluster). */
export async function dig (name: string): Promise<string | undefined> {
  const { Resolver } = await import('node:dns/promises')
  const resolver = new Resolver({ timeout: 2000, tries: 1 })
  resolver.setServers([NODE_IP])
  try {
    return (await resolver.resolve4(name))[0]
  } catch {
    return undefined
  }
}

/** kube-proxy in iptables mode for this node; masqueradeAll because pods and the host share one bridge. */
export async function startProxy (): Promise<string> {
  const kubeconfig = await componentKubeconfig('kube-proxy', '/CN=system:kube-proxy')
  const config = join(work, 'kube-proxy.yaml')
  writeFileSync(config, toYaml({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig },
    hostnameOverride: NODE_NAME,
    mode: 'iptables',
    clusterCIDR: POD_CIDR,
    iptables: { masqueradeAll: true, syncPeriod: '5s', minSyncPeriod: '0s' },
    // the VM's conntrack table size is not ours to change
    conntrack: { maxPerCore: 0, min: 0 },
    metricsBindAddress: `127.0.0.1:${await freePort()}`,
    healthzBindAddress: `127.0.0.1:${await freePort()}`
  }))
  proxy = startService('kube-proxy', tool('kube-proxy'), [`--config=${config}`, '--v=1'], { logDir, env: baseEnv })
  await waitFor('kube-proxy\'s first sync', async () => {
    failIfExited(proxy as Service)
    const r = await run('iptables-save', ['-t', 'nat'])
    return r.stdout.includes(':KUBE-SERVICES') && r.stdout.includes('KUBE-MARK-MASQ')
  }, { timeoutMs: 60_000 })
  return 'kube-proxy (iptables) programs Services for the node'
}

/** Removes kube-proxy's rules from the host (its own --cleanup). */
export async function cleanupProxy (): Promise<void> {
  if (proxy === undefined) return
  await run(tool('kube-proxy'), ['--cleanup', '--v=0'], { env: baseEnv })
}
