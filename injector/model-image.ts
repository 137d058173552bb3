/**
 * `onnx-sidecar.io/model-image`: the model repository as an OCI image, mounted through a
 * Kubernetes image volume (`volumes[].image`) in place of the configured shared volume.
 * The image's files are the repository as `serve` reads it (`<model>/config.yaml`,
 * `<model>/<version>/model.onnx`), so it is mounted read-only at the same path.
 *
 * Denied: together with `onnx-sidecar.io/volume` (both choose the model volume, and a pod
 * that sets both says two things), and on an API server older than image volumes when the
 * version is known. A reference without a digest is admitted with a warning: a tag can
 * move, and nodes that pulled it earlier keep serving what they have.
 */
import { ANNOTATIONS, type PodAnnotations } from './annotations.js'
import { errors } from './errors.js'
import { pinned, type ImageReference } from './image-reference.js'
import { IMAGE_VOLUME_MIN_VERSION, atLeast, type ClusterInfo } from './kube-version.js'
import type { InjectionConfig } from './injection-config.js'
import type { JsonObject } from './merge.js'

/** The pod volume the model image gets. */
export const MODEL_IMAGE_VOLUME = 'onnx-sidecar-model-image'

const NEEDED = `${IMAGE_VOLUME_MIN_VERSION.major}.${IMAGE_VOLUME_MIN_VERSION.minor}`

/**
 * Checks what the pod asks for against the other annotations and the cluster; returns the
 * admission warnings. Throws an `InjectorError` that denies the pod.
 */
export function checkModelImage (ref: ImageReference, values: PodAnnotations, cluster: ClusterInfo): string[] {
  const key = ANNOTATIONS.modelImage.key
  if (values.volume !== undefined) {
    throw errors.ANNOTATION_CONFLICT(key, ref.text, ANNOTATIONS.volume.key, values.volume,
      `both choose the model volume; keep ${key} to serve the image, or ${ANNOTATIONS.volume.key} to serve a volume of the pod`)
  }
  const version = cluster.kubeVersion
  if (version !== undefined && !atLeast(version, IMAGE_VOLUME_MIN_VERSION)) {
    throw errors.KUBE_TOO_OLD(key, ref.text, NEEDED, 'image volumes (volumes[].image, beta and on by default since 1.35)', version.text,
      `serve the models from a volume instead (${ANNOTATIONS.volume.key} or the injection config's modelVolume), or upgrade the cluster`)
  }
  if (pinned(ref)) return []
  const what = ref.tag === undefined ? 'names no tag or digest (so the tag latest)' : `names the tag '${ref.tag}' and no digest`
  return [`${key}: ${JSON.stringify(ref.text)} ${what}: a tag can be pushed again, and a node that pulled it before keeps what it has; a digest pins the exact model (${ref.text}@sha256:<digest>)`]
}

/** The image volume; Kubernetes mounts it read-only whatever the mount says. */
export function modelImageVolume (ref: ImageReference, config: InjectionConfig): JsonObject & { name: string } {
  return { name: MODEL_IMAGE_VOLUME, image: { reference: ref.text, pullPolicy: config.modelImage.pullPolicy } }
}
