/**
 * Strategic-merge-like helpers on plain JSON: objects merge key by key, lists of named
 * objects (`env`, `volumeMounts`, `ports`, ...) merge by their key, every other value
 * on the right replaces the left. `merge(a, merge(a, b))` equals `merge(a, b)`, which
 * is what makes re-injection a no-op.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
export type JsonObject = { [key: string]: Json }

export function isObject (v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** List fields of a Container that Kubernetes merges by a key, and that key. */
const MERGE_KEYS: Record<string, string> = {
  env: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  ports: 'containerPort',
  resizePolicy: 'resourceName'
}

export function merge (left: Json | undefined, right: Json | undefined, field?: string): Json | undefined {
  if (right === undefined) return left
  if (isObject(left) && isObject(right)) {
    const out: JsonObject = { ...left }
    for (const [k, v] of Object.entries(right)) {
      if (k === '__proto__') continue // never valid in a Kubernetes object; would replace the prototype
      const merged = merge(left[k], v, k)
      if (merged !== undefined) out[k] = merged
    }
    return out
  }
  const key = field === undefined ? undefined : MERGE_KEYS[field]
  if (key !== undefined && Array.isArray(left) && Array.isArray(right)) return mergeByKey(left, right, key)
  return right
}

function mergeByKey (left: Json[], right: Json[], key: string): Json[] {
  const out = [...left]
  for (const item of right) {
    const id = isObject(item) ? item[key] : undefined
    const at = id === undefined ? -1 : out.findIndex(o => isObject(o) && o[key] === id)
    if (at === -1) out.push(item)
    else out[at] = merge(out[at], item) as Json
  }
  return out
}

/** A deep copy of plain JSON; several times faster than `structuredClone` for pod-sized objects. */
export function cloneJson<T> (value: T): T {
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) return value.map(cloneJson) as T
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    if (key === '__proto__') continue
    out[key] = cloneJson((value as Record<string, unknown>)[key])
  }
  return out as T
}
