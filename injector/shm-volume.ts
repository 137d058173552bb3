/**
 * `onnx-sidecar.io/shm-size`: one memory-backed `/dev/shm` shared by the sidecar and the
 * app containers, so that regions an app creates with POSIX shared memory (Triton's
 * system shared-memory extension, `tritonclient.utils.shared_memory`) are the sidecar's
 * to read and write. An `emptyDir` with `medium: Memory` and the annotation's size as
 * `sizeLimit`: its pages count against the pod's memory limit (the containers' limits
 * together), like any tmpfs.
 *
 * The app containers are those that get the `ONNX_SIDECAR_*` variables (every one of
 * `spec.containers`, or those `onnx-sidecar.io/containers` names). A container that
 * already mounts something at `/dev/shm` keeps it; a warning says it cannot share regions.
 */
import { ANNOTATIONS } from './annotations.js'
import { isObject, type JsonObject } from './merge.js'

export const SHM_VOLUME = 'onnx-sidecar-shm'
export const SHM_DIR = '/dev/shm'

const mountsShm = (c: JsonObject): JsonObject | undefined => {
  const list = Array.isArray(c.volumeMounts) ? c.volumeMounts : []
  const m = list.find(m => isObject(m) && typeof m.mountPath === 'string' && m.mountPath.replace(/\/+$/, '') === SHM_DIR)
  return isObject(m) ? m : undefined
}

/**
 * Adds the volume (unless the pod has one of that name: the pod's choice wins) and mounts
 * it at /dev/shm in `sidecar` (a container object already in the spec) and the chosen app
 * containers. Returns whether the volume was added, and the warnings.
 */
export function addShmVolume (spec: JsonObject, size: string, sidecar: JsonObject, containers: readonly string[] | undefined): { added: boolean, warnings: string[] } {
  const volumes = Array.isArray(spec.volumes) ? spec.volumes : (spec.volumes = [])
  const added = !volumes.some(v => isObject(v) && v.name === SHM_VOLUME)
  if (added) volumes.push({ name: SHM_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: size } })
  const warnings: string[] = []
  const mount = { name: SHM_VOLUME, mountPath: SHM_DIR }
  sidecar.volumeMounts = [...(Array.isArray(sidecar.volumeMounts) ? sidecar.volumeMounts : []), { ...mount }]
  const apps = Array.isArray(spec.containers) ? spec.containers : []
  for (const [i, c] of apps.entries()) {
    if (!isObject(c) || c === sidecar || c.name === sidecar.name) continue
    const name = String(c.name)
    if (containers !== undefined && !containers.includes(name)) continue
    const there = mountsShm(c)
    if (there !== undefined) {
      if (there.name !== SHM_VOLUME) warnings.push(`${ANNOTATIONS.shmSize.key}: container '${name}' mounts volume '${String(there.name)}' at ${SHM_DIR}, so it does not share the sidecar's shared memory; remove that mount to use the extension from it`)
      continue
    }
    apps[i] = { ...c, volumeMounts: [...(Array.isArray(c.volumeMounts) ? c.volumeMounts : []), { ...mount }] }
  }
  return { added, warnings }
}
