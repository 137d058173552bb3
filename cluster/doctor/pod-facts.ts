/**
 * What the checks ask of pods, workloads and events, in one place: does it ask for a model,
 * is it injected, where is its sidecar, which object is it. The names come from the
 * injector itself (annotation keys, the sidecar's container name), so doctor and the
 * injector cannot disagree about them.
 */
import { ANNOTATIONS, STATUS_ANNOTATION } from '../../injector/annotations.js'
import { CONTAINER_NAME } from '../../injector/inject-pod.js'
import type { ObjectRef } from './findings.js'
import type { Container, ContainerStatus, Event, Meta, Pod } from './snapshot.js'

export const SIDECAR = CONTAINER_NAME
export const MODEL_KEY = ANNOTATIONS.model.key
export const MODEL_IMAGE_KEY = ANNOTATIONS.modelImage.key
export const VOLUME_KEY = ANNOTATIONS.volume.key
export const INJECT_KEY = ANNOTATIONS.inject.key
export { STATUS_ANNOTATION }
/** The webhook's name in the chart's MutatingWebhookConfiguration. */
export const WEBHOOK_NAME = 'inject.onnx-sidecar.io'
/** Where the sidecar mounts the model repository. */
export const MODELS_PATH = '/models'

/** Carries the model annotation and has not opted out (what the chart's matchConditions send to the webhook). */
export function wantsModel (meta: Meta | undefined): boolean {
  const a = meta?.annotations ?? {}
  return a[MODEL_KEY] !== undefined && a[INJECT_KEY] !== 'false'
}

export function sidecarContainer (pod: Pod): Container | undefined {
  return [...pod.spec?.initContainers ?? [], ...pod.spec?.containers ?? []].find(c => c.name === SIDECAR)
}

export function sidecarStatus (pod: Pod): ContainerStatus | undefined {
  return [...pod.status?.initContainerStatuses ?? [], ...pod.status?.containerStatuses ?? []].find(s => s.name === SIDECAR)
}

/** The injector's record and its container are both there. */
export function isInjected (pod: Pod): boolean {
  return pod.metadata?.annotations?.[STATUS_ANNOTATION] !== undefined && sidecarContainer(pod) !== undefined
}

/** Finished or being deleted: nothing to fix in it. */
export function isGone (pod: Pod): boolean {
  const phase = pod.status?.phase
  return phase === 'Succeeded' || phase === 'Failed' || pod.metadata?.deletionTimestamp !== undefined
}

/** An injected, live pod whose sidecar has started at least once and is not ready: its log says why. */
export function sidecarNeedsLog (pod: Pod): boolean {
  if (!isInjected(pod) || isGone(pod)) return false
  const s = sidecarStatus(pod)
  if (s === undefined || s.ready === true) return false
  return s.state?.running !== undefined || s.lastState?.terminated !== undefined || s.state?.terminated !== undefined
}

export function refOf (kind: string, meta: Meta | undefined): ObjectRef {
  const ref: ObjectRef = { kind, name: meta?.name ?? '(unnamed)' }
  if (meta?.namespace !== undefined) ref.namespace = meta.namespace
  return ref
}

export function podRef (pod: Pod): ObjectRef {
  return refOf('Pod', pod.metadata)
}

/** When an event last happened, in ms since the epoch (0 when it says nothing). */
export function eventMs (e: Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp
  const ms = t === undefined ? NaN : Date.parse(t)
  return Number.isNaN(ms) ? 0 : ms
}

/** The events about one pod, oldest first. */
export function podEvents (events: readonly Event[], pod: Pod): Event[] {
  return events
    .filter(e => e.involvedObject?.kind === 'Pod' && e.involvedObject.name === pod.metadata?.name)
    .sort((a, b) => eventMs(a) - eventMs(b))
}

/** The workload that owns a pod (a ReplicaSet's Deployment), as `kind/name`, or undefined for a bare pod. */
export function ownerOf (pod: Pod, workloads: ReadonlyArray<{ kind?: string, metadata?: Meta }>): string | undefined {
  const owner = pod.metadata?.ownerReferences?.[0]
  if (owner?.kind === undefined || owner.name === undefined) return undefined
  if (owner.kind === 'ReplicaSet') {
    const rs = workloads.find(w => w.kind === 'ReplicaSet' && w.metadata?.name === owner.name)
    const dep = rs?.metadata?.ownerReferences?.find(o => o.kind === 'Deployment')
    if (dep?.name !== undefined) return `deployment/${dep.name}`
  }
  return `${owner.kind.toLowerCase()}/${owner.name}`
}

/** How to get a pod re-created (and so injected): restart its workload, or delete and re-create a bare pod. */
export function recreateHint (pod: Pod, workloads: ReadonlyArray<{ kind?: string, metadata?: Meta }>): string {
  const owner = ownerOf(pod, workloads)
  const ns = pod.metadata?.namespace === undefined ? '' : ` -n ${pod.metadata.namespace}`
  if (owner !== undefined && /^(deployment|statefulset|daemonset)\//.test(owner)) return `kubectl rollout restart ${owner}${ns}`
  if (owner !== undefined) return `delete the pod (kubectl delete pod ${pod.metadata?.name ?? ''}${ns}); ${owner} creates a new one`
  return `delete the pod and create it again (kubectl delete pod ${pod.metadata?.name ?? ''}${ns}, then kubectl apply it)`
}

/** An event message that is not about pulling an image (those are image-pull.ts' findings). */
export function notAboutPulling (message: string): boolean {
  return !/pull(ing)? image|ErrImagePull|ImagePullBackOff/i.test(message)
}
