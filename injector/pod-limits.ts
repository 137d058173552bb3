/**
 * The largest pod the webhook injects. Mutating webhooks run before the API server
 * validates a pod, so a review can carry any shape that fits the body limit, and the
 * injection's work grows with the lists it walks and copies: every app container gets a
 * copy with new variables, a prepended `env` list shifts every entry in the patch. Four
 * MiB of `containers: [{},{},…]` made `admit` run 16 s and peak at 2.7 GB. Real pods have
 * a few dozen entries in these lists; an annotated pod with more than `MAX_POD_ITEMS` is
 * denied with a message saying so. So is one whose annotations are over Kubernetes' own
 * limit (the API server would refuse the pod after the webhooks anyway): parsing a 3 MiB
 * `onnx-sidecar.io/model` list is not work worth doing.
 */
import { errors } from './errors.js'
import { isObject } from './merge.js'

/** Most entries, summed over the lists below, an annotated pod may have. */
export const MAX_POD_ITEMS = 10_000

/** Kubernetes' limit on the total size of a pod's annotations, keys and values (`TotalAnnotationSizeLimitB`). */
export const MAX_ANNOTATION_BYTES = 256 * 1024

/** Per container: the lists the injection reads or copies. */
const CONTAINER_LISTS = ['env', 'envFrom', 'volumeMounts', 'ports'] as const

function length (value: unknown): number {
  return Array.isArray(value) ? value.length : 0
}

/**
 * Entries in the pod's annotations, containers, init containers, volumes, and each
 * container's `env`, `envFrom`, `volumeMounts` and `ports`. Stops counting past `limit`.
 */
export function podItems (pod: unknown, limit = MAX_POD_ITEMS): number {
  if (!isObject(pod)) return 0
  const metadata = isObject(pod.metadata) ? pod.metadata : {}
  let n = 0
  if (isObject(metadata.annotations)) {
    for (const key in metadata.annotations) if (Object.hasOwn(metadata.annotations, key) && ++n > limit) return n
  }
  const spec = isObject(pod.spec) ? pod.spec : {}
  n += length(spec.volumes)
  for (const list of [spec.containers, spec.initContainers]) {
    if (!Array.isArray(list)) continue
    n += list.length
    if (n > limit) return n
    for (const c of list) {
      if (!isObject(c)) continue
      for (const field of CONTAINER_LISTS) n += length(c[field])
      if (n > limit) return n
    }
  }
  return n
}

/** Bytes of the pod's annotation keys and string values, as Kubernetes counts them; stops counting past `limit`. */
export function annotationBytes (pod: unknown, limit = MAX_ANNOTATION_BYTES): number {
  const metadata = isObject(pod) && isObject(pod.metadata) ? pod.metadata : {}
  if (!isObject(metadata.annotations)) return 0
  const annotations = metadata.annotations
  let n = 0
  for (const key in annotations) {
    if (!Object.hasOwn(annotations, key)) continue
    const value = annotations[key]
    n += Buffer.byteLength(key) + (typeof value === 'string' ? Buffer.byteLength(value) : 0)
    if (n > limit) return n
  }
  return n
}

/** Throws `INVALID_POD` (the pod is denied) when the pod is over either limit. */
export function checkPodSize (pod: unknown): void {
  const bytes = annotationBytes(pod)
  if (bytes > MAX_ANNOTATION_BYTES) {
    throw errors.INVALID_POD(`its annotations hold more than ${MAX_ANNOTATION_BYTES} bytes (Kubernetes' limit: the API server refuses the pod)`)
  }
  const n = podItems(pod)
  if (n > MAX_POD_ITEMS) {
    throw errors.INVALID_POD(`it has more than ${MAX_POD_ITEMS} annotations, containers, volumes, env entries, volume mounts and ports in all (at least ${n}); the injector does not handle pods that large`)
  }
}
