/**
 * Reads what the checks need from the API server into a Snapshot, as the API's own JSON
 * (client-node's typed objects serialized back, so a Snapshot from a live cluster and one
 * from a JSON fixture are the same thing). Lists that cannot be read (403) are recorded as
 * unreadable and their checks skip; an API server that cannot be reached, rejects the
 * credentials, or has no such namespace or pod is a ClusterError (exit 2).
 */
import {
  AdmissionregistrationV1Api, AppsV1Api, BatchV1Api, CoreV1Api, DiscoveryV1Api, VersionApi, ApiException,
  type KubeConfig
} from '@kubernetes/client-node'
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js'
import { SIDECAR, sidecarNeedsLog, sidecarStatus } from './pod-facts.js'
import type { EndpointSlice, Event, Pod, Snapshot, Unreadable, Workload } from './snapshot.js'
import { chartWebhooks } from './webhooks.js'
import { serviceKey } from './checks/webhook-endpoints.js'

/** Doctor cannot diagnose at all: one line for the user, exit 2. */
export class ClusterError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ClusterError'
  }
}

/** How long one API call may take: 15 seconds. */
export const CALL_TIMEOUT_MS = 15_000
/** Sidecar log lines read per pod (the `model cannot be loaded` line is among the last). */
export const LOG_TAIL_LINES = 20
/** Pods whose sidecar log is read, at most. */
export const MAX_LOGS = 10

export interface FetchTarget {
  namespace: string
  pod?: string
  releaseNamespace?: string
  now?: Date
}

/** The API server's own words for a failed call: its Status message, else the HTTP code. */
function apiReason (err: ApiException<unknown>): string {
  let body: unknown = err.body
  if (typeof body === 'string') {
    try { body = JSON.parse(body) } catch { /* not JSON */ }
  }
  const message = (body as { message?: unknown } | undefined)?.message
  return typeof message === 'string' ? `${message} (HTTP ${err.code})` : `HTTP ${err.code}`
}

function unauthorized (err: ApiException<unknown>): ClusterError {
  return new ClusterError(`the API server rejected the credentials (${apiReason(err)}): check the kubeconfig user's token, certificate or exec plugin`)
}

async function call<T> (what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new ClusterError(`the API server did not answer ${what} within ${CALL_TIMEOUT_MS / 1000} s`)), CALL_TIMEOUT_MS)
  })
  try {
    return await Promise.race([fn(), timeout])
  } catch (err) {
    if (err instanceof ApiException || err instanceof ClusterError) throw err
    throw new ClusterError(`cannot reach the API server: ${(err as Error).message.split('\n')[0] ?? ''}`)
  } finally {
    clearTimeout(timer)
  }
}

function json<T> (obj: unknown, type: string): T {
  return ObjectSerializer.serialize(obj, type, '') as T
}

export async function fetchSnapshot (kc: KubeConfig, target: FetchTarget): Promise<Snapshot> {
  const core = kc.makeApiClient(CoreV1Api)
  const apps = kc.makeApiClient(AppsV1Api)
  const batch = kc.makeApiClient(BatchV1Api)
  const { namespace } = target
  const unreadable: Unreadable[] = []

  /** A list the checks can do without: a 403 or 404 records it as unreadable. */
  async function optional<T> (what: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call(what, fn)
    } catch (err) {
      if (err instanceof ApiException) {
        if (err.code === 401) throw unauthorized(err)
        unreadable.push({ what, reason: apiReason(err) })
        return undefined
      }
      throw err
    }
  }

  // The first call says whether the API server is there at all.
  const version = await optional('version', async () => json<Snapshot['version']>(await kc.makeApiClient(VersionApi).getCode(), 'VersionInfo'))
  let namespaceObject: Snapshot['namespaceObject']
  try {
    namespaceObject = await call('Namespace', async () => json(await core.readNamespace({ name: namespace }), 'V1Namespace'))
  } catch (err) {
    if (!(err instanceof ApiException)) throw err
    if (err.code === 404) throw new ClusterError(`namespace ${namespace} not found`)
    if (err.code === 401) throw unauthorized(err)
    unreadable.push({ what: 'Namespace', reason: apiReason(err) })
  }

  let pods: Pod[] | undefined
  if (target.pod !== undefined) {
    const name = target.pod
    try {
      pods = [await call('Pod', async () => json<Pod>(await core.readNamespacedPod({ name, namespace }), 'V1Pod'))]
    } catch (err) {
      if (!(err instanceof ApiException)) throw err
      throw new ClusterError(err.code === 404 ? `pod ${name} not found in namespace ${namespace}` : `cannot read pod ${name} in namespace ${namespace}: ${apiReason(err)}`)
    }
  }
  const [webhookConfigurations, podList, deployments, statefulSets, daemonSets, replicaSets, jobs, events, pvcs] = await Promise.all([
    optional('MutatingWebhookConfiguration', async () => (await kc.makeApiClient(AdmissionregistrationV1Api).listMutatingWebhookConfiguration()).items.map(i => json<NonNullable<Snapshot['webhookConfigurations']>[number]>(i, 'V1MutatingWebhookConfiguration'))),
    pods !== undefined ? pods : optional('Pod', async () => (await core.listNamespacedPod({ namespace })).items.map(i => json<Pod>(i, 'V1Pod'))),
    optional('Deployment', async () => (await apps.listNamespacedDeployment({ namespace })).items.map(i => ({ ...json<Workload>(i, 'V1Deployment'), kind: 'Deployment' }))),
    optional('StatefulSet', async () => (await apps.listNamespacedStatefulSet({ namespace })).items.map(i => ({ ...json<Workload>(i, 'V1StatefulSet'), kind: 'StatefulSet' }))),
    optional('DaemonSet', async () => (await apps.listNamespacedDaemonSet({ namespace })).items.map(i => ({ ...json<Workload>(i, 'V1DaemonSet'), kind: 'DaemonSet' }))),
    optional('ReplicaSet', async () => (await apps.listNamespacedReplicaSet({ namespace })).items.map(i => ({ ...json<Workload>(i, 'V1ReplicaSet'), kind: 'ReplicaSet' }))),
    optional('Job', async () => (await batch.listNamespacedJob({ namespace })).items.map(i => ({ ...json<Workload>(i, 'V1Job'), kind: 'Job' }))),
    optional('Event', async () => (await core.listNamespacedEvent({ namespace })).items.map(i => json<Event>(i, 'CoreV1Event'))),
    optional('PersistentVolumeClaim', async () => (await core.listNamespacedPersistentVolumeClaim({ namespace })).items.map(i => json<NonNullable<Snapshot['pvcs']>[number]>(i, 'V1PersistentVolumeClaim')))
  ])
  let workloads: Workload[] = [...deployments ?? [], ...statefulSets ?? [], ...daemonSets ?? [], ...replicaSets ?? [], ...jobs ?? []]
  let eventList = events ?? []
  if (target.pod !== undefined) {
    // One pod: its owners (a ReplicaSet's Deployment too) and the events about them and it.
    const owners = new Set((podList?.[0]?.metadata?.ownerReferences ?? []).map(o => `${o.kind ?? ''}/${o.name ?? ''}`))
    for (const w of workloads) {
      if (owners.has(`${w.kind ?? ''}/${w.metadata?.name ?? ''}`)) for (const o of w.metadata?.ownerReferences ?? []) owners.add(`${o.kind ?? ''}/${o.name ?? ''}`)
    }
    owners.add(`Pod/${target.pod}`)
    workloads = workloads.filter(w => owners.has(`${w.kind ?? ''}/${w.metadata?.name ?? ''}`))
    eventList = eventList.filter(e => owners.has(`${e.involvedObject?.kind ?? ''}/${e.involvedObject?.name ?? ''}`))
  }

  const snapshot: Snapshot = {
    namespace,
    now: target.now ?? new Date(),
    version,
    webhookConfigurations,
    endpointSlices: {},
    namespaceObject,
    pods: podList ?? [],
    workloads,
    events: eventList,
    pvcs,
    sidecarLogs: {},
    unreadable
  }
  if (target.pod !== undefined) snapshot.pod = target.pod
  if (target.releaseNamespace !== undefined) snapshot.releaseNamespace = target.releaseNamespace

  const discovery = kc.makeApiClient(DiscoveryV1Api)
  await Promise.all(chartWebhooks(snapshot).map(async ({ webhook }) => {
    const svc = webhook.clientConfig?.service
    if (svc?.name === undefined || svc.namespace === undefined) return
    const { name, namespace: svcNs } = svc
    const slices = await optional('EndpointSlice', async () => (await discovery.listNamespacedEndpointSlice({ namespace: svcNs, labelSelector: `kubernetes.io/service-name=${name}` })).items.map(i => json<EndpointSlice>(i, 'V1EndpointSlice')))
    if (slices !== undefined) snapshot.endpointSlices[serviceKey(svcNs, name)] = slices
  }))

  await Promise.all(snapshot.pods.filter(sidecarNeedsLog).slice(0, MAX_LOGS).map(async pod => {
    const name = pod.metadata?.name ?? ''
    const previous = sidecarStatus(pod)?.state?.waiting !== undefined // restarting: the log of the run that failed
    try {
      snapshot.sidecarLogs[name] = await call('Pod log', async () => await core.readNamespacedPodLog({ name, namespace, container: SIDECAR, tailLines: LOG_TAIL_LINES, previous }))
    } catch {
      // No log (the node is unreachable, the container never ran): the other evidence stands.
    }
  }))
  return snapshot
}
