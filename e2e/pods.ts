/**
 * Pods as the API server reports them: a Deployment's pods, Ready and rolled-out tests,
 * container statuses, logs, and the events that say why a pod is not Ready. Shared by the
 * workload, model-image and shop checks.
 */
import { waitFor } from './lib.js'
import { APP_NS, kubectlRaw, getJson, type Json } from './context.js'

export async function podsOf (name: string, ns = APP_NS): Promise<Json[]> {
  return (await getJson('pods', '-n', ns, '-l', `app.kubernetes.io/name=${name}`)).items
}

/** Ready and not terminating: where a Service would send traffic. */
export function isReady (p: Json): boolean {
  return p.metadata.deletionTimestamp === undefined && (p.status?.conditions ?? []).some((c: Json) => c.type === 'Ready' && c.status === 'True')
}

/** The last events of a pod: what the kubelet reported about it. */
export async function why (ns: string, pod: string): Promise<string> {
  const events = await kubectlRaw(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${pod}`, '-o', 'custom-columns=REASON:.reason,MESSAGE:.message', '--no-headers'])
  return events.stdout.trim().split('\n').slice(-8).join('\n')
}

/** Waits until `count` pods of the Deployment are Ready; on timeout says what the kubelet reported. */
export async function readyPods (name: string, count: number, ns = APP_NS, timeoutMs = 240_000): Promise<Json[]> {
  try {
    return await waitFor(`${count} Ready pod(s) of ${name}`, async () => {
      const ready = (await podsOf(name, ns)).filter(isReady)
      return ready.length >= count ? ready : undefined
    }, { timeoutMs, intervalMs: 1000 })
  } catch (err) {
    const pods = await podsOf(name, ns)
    const detail = await Promise.all(pods.map(async (p: Json) => `${String(p.metadata.name)} ${String(p.status?.phase)}: ${JSON.stringify([...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].map((s: Json) => ({ [s.name]: s.state })))}\n${await why(ns, p.metadata.name)}`))
    throw new Error(`${(err as Error).message}\n${detail.join('\n')}`)
  }
}

/** Waits until a Deployment's rollout is complete: every replica updated, ready, and (by `isNew`) of the new template. */
export async function waitForRollout (name: string, isNew: (pod: Json) => boolean, timeoutMs = 300_000): Promise<void> {
  await waitFor(`Deployment ${name} rolled out`, async () => {
    const d = await getJson('deployment', name, '-n', APP_NS)
    const s = d.status ?? {}
    const want = d.spec.replicas
    const pods = await podsOf(name)
    return s.observedGeneration >= d.metadata.generation && s.replicas === want && s.updatedReplicas === want &&
      s.readyReplicas === want && pods.length === want && pods.every(isNew)
  }, { timeoutMs, intervalMs: 1000 })
}

export function statusOf (p: Json, name: string): Json {
  return [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].find((s: Json) => s.name === name)
}

export async function logsOf (p: Json, container: string, previous = false): Promise<string> {
  const r = await kubectlRaw(['logs', '-n', p.metadata.namespace, p.metadata.name, '-c', container, ...(previous ? ['--previous'] : [])])
  return r.code === 0 ? r.stdout : `(kubectl logs failed: ${r.stderr.trim()})`
}

export function jsonLines (text: string): Json[] {
  return text.split('\n').flatMap(l => { try { return [JSON.parse(l)] } catch { return [] } })
}
