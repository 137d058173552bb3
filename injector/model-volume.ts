/**
 * The model volume is read-only for everyone in the pod. It is shared (a claim, an NFS
 * export, a node's directory mounted by many pods), so a container that could write to it
 * could change the models every other pod serves. Every mount of it, in any container
 * (app, init, other native sidecars, and the sidecar after a pod's override), is made
 * `readOnly: true`, with an admission warning naming the container; the pod is not denied.
 *
 * A volume that belongs to this pod alone (`emptyDir`, `ephemeral`) is left as it is: an
 * init container may fill it before the sidecar starts (`onnx-sidecar.io/volume`).
 */
import { isObject, type JsonObject } from './merge.js'

/** Volume sources whose storage exists for this pod only. */
const POD_PRIVATE_SOURCES: readonly string[] = ['emptyDir', 'ephemeral']

function podPrivate (spec: JsonObject, volume: string): boolean {
  const volumes = Array.isArray(spec.volumes) ? spec.volumes : []
  const v = volumes.find(x => isObject(x) && x.name === volume)
  return isObject(v) && POD_PRIVATE_SOURCES.some(source => Object.hasOwn(v, source))
}

/**
 * Makes every mount of `volume` read-only. A container it changes is replaced by a changed
 * copy, so `spec.containers` and `spec.initContainers` must be the caller's own lists.
 * Returns one warning per container changed.
 */
export function readOnlyModelVolume (spec: JsonObject, volume: string): string[] {
  if (podPrivate(spec, volume)) return []
  const warnings: string[] = []
  for (const field of ['initContainers', 'containers'] as const) {
    const list = spec[field]
    if (!Array.isArray(list)) continue
    for (const [i, c] of list.entries()) {
      if (!isObject(c) || !Array.isArray(c.volumeMounts)) continue
      const writable = c.volumeMounts.filter((m): m is JsonObject => isObject(m) && m.name === volume && m.readOnly !== true)
      if (writable.length === 0) continue
      list[i] = { ...c, volumeMounts: c.volumeMounts.map(m => writable.includes(m as JsonObject) ? { ...(m as JsonObject), readOnly: true } : m) }
      const paths = writable.map(m => String(m.mountPath)).join(', ')
      warnings.push(`container '${String(c.name)}' mounts the model volume '${volume}' at ${paths} writable; the injector made it read-only (the model volume is shared: set readOnly: true)`)
    }
  }
  return warnings
}

/** The volume a container mounts at `path`, if any (the sidecar's model volume at /models). */
export function mountedAt (container: JsonObject | undefined, path: string): string | undefined {
  const mounts = container !== undefined && Array.isArray(container.volumeMounts) ? container.volumeMounts : []
  const m = mounts.find(x => isObject(x) && x.mountPath === path)
  return isObject(m) && typeof m.name === 'string' ? m.name : undefined
}
