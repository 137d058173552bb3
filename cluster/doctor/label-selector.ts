/**
 * Kubernetes label selectors (matchLabels and matchExpressions with In, NotIn, Exists,
 * DoesNotExist), evaluated as the API server does for a webhook's namespaceSelector and
 * objectSelector. An empty or absent selector matches everything.
 */
import type { LabelSelector, Labels } from './snapshot.js'

/** Why `labels` does not match `selector` (one requirement, in the selector's words), or undefined when it matches. */
export function mismatch (selector: LabelSelector | undefined, labels: Labels = {}): string | undefined {
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) {
    if (labels[key] !== value) return `${key}=${value}`
  }
  for (const r of selector?.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, r.key)
    const values = r.values ?? []
    const ok = r.operator === 'In'
      ? has && values.includes(labels[r.key] as string)
      : r.operator === 'NotIn'
        ? !has || !values.includes(labels[r.key] as string)
        : r.operator === 'Exists'
          ? has
          : r.operator === 'DoesNotExist' ? !has : false
    if (!ok) return `${r.key} ${r.operator}${values.length > 0 ? ` (${values.join(', ')})` : ''}`
  }
  return undefined
}
