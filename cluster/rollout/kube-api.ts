/**
 * The API server calls of `onnx-sidecar rollout`: read a Deployment, find the Ready pods
 * of its current ReplicaSet, read each pod's /metrics through the API server's pod proxy
 * (`/api/v1/namespaces/NS/pods/NAME:PORT/proxy/metrics`, PORT from the pod's
 * prometheus.io/port), and patch the Deployment with a JSON merge patch.
 */
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Deployment, type V1LabelSelector, type V1Pod } from '@kubernetes/client-node'
import { RolloutError } from './deployment.js'

/** The sidecar's metrics port when a pod has no prometheus.io/port annotation. */
const DEFAULT_METRICS_PORT = '9464'
const REVISION = 'deployment.kubernetes.io/revision'

export interface PodTarget { name: string, port: string }

export interface RolloutApi {
  deployment: (namespace: string, name: string) => Promise<V1Deployment>
  pods: (d: V1Deployment) => Promise<PodTarget[]>
  metrics: (namespace: string, pod: PodTarget) => Promise<string>
  patch: (namespace: string, name: string, patch: object) => Promise<V1Deployment>
}

/** A label selector as the API's labelSelector query parameter writes it. */
export function selectorString (s: V1LabelSelector | undefined): string {
  const parts = Object.entries(s?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`)
  for (const e of s?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',')
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`)
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`)
    else if (e.operator === 'Exists') parts.push(e.key)
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`)
  }
  return parts.join(',')
}

function ready (p: V1Pod): boolean {
  return p.metadata?.deletionTimestamp === undefined && (p.status?.conditions ?? []).some(c => c.type === 'Ready' && c.status === 'True')
}

/** What went wrong in API server words: the status message, else the error's. */
function apiError (what: string, err: unknown): RolloutError {
  const e = err as { code?: number, body?: unknown, message?: string }
  let message = e.message ?? String(err)
  if (typeof e.body === 'string') {
    try {
      message = (JSON.parse(e.body) as { message?: string }).message ?? e.body
    } catch {
      message = e.body.slice(0, 300)
    }
  }
  return new RolloutError(`${what}: ${e.code === undefined ? '' : `${e.code} `}${message}`)
}

async function call<T> (what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f()
  } catch (err) {
    throw apiError(what, err)
  }
}

export function kubeRolloutApi (kc: KubeConfig): RolloutApi {
  const apps = kc.makeApiClient(AppsV1Api)
  const core = kc.makeApiClient(CoreV1Api)
  return {
    deployment: async (namespace, name) => await call(`deployment ${namespace}/${name}`, async () => await apps.readNamespacedDeployment({ name, namespace })),
    async pods (d) {
      const namespace = d.metadata?.namespace ?? 'default'
      const labelSelector = selectorString(d.spec?.selector)
      const revision = d.metadata?.annotations?.[REVISION]
      const sets = await call(`replicasets of ${namespace}/${d.metadata?.name ?? ''}`, async () => await apps.listNamespacedReplicaSet({ namespace, labelSelector }))
      const current = sets.items.find(rs => (rs.metadata?.ownerReferences ?? []).some(o => o.uid === d.metadata?.uid) && rs.metadata?.annotations?.[REVISION] === revision)
      const hash = current?.metadata?.labels?.['pod-template-hash']
      const selector = hash === undefined ? labelSelector : `${labelSelector},pod-template-hash=${hash}`
      const pods = await call(`pods of ${namespace}/${d.metadata?.name ?? ''}`, async () => await core.listNamespacedPod({ namespace, labelSelector: selector }))
      return pods.items.filter(ready).map(p => ({ name: p.metadata?.name ?? '', port: p.metadata?.annotations?.['prometheus.io/port'] ?? DEFAULT_METRICS_PORT }))
        .sort((a, b) => a.name.localeCompare(b.name))
    },
    metrics: async (namespace, pod) => await call(`pod ${pod.name} /metrics`, async () => await core.connectGetNamespacedPodProxyWithPath({ name: `${pod.name}:${pod.port}`, namespace, path: 'metrics' })),
    patch: async (namespace, name, patch) => await call(`patch deployment ${namespace}/${name}`, async () =>
      await apps.patchNamespacedDeployment({ name, namespace, body: patch, fieldManager: 'onnx-sidecar' }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)))
  }
}
