/** Lists doctor could not read (RBAC, usually): which checks did not run (OSD_CANNOT_READ). */
import { oneLine, type Finding } from '../findings.js'
import { refOf } from '../pod-facts.js'
import type { Snapshot } from '../snapshot.js'

/** Kinds that live outside namespaces. */
const CLUSTER_SCOPED = new Set(['MutatingWebhookConfiguration', 'Namespace'])

export function checkUnreadable (s: Snapshot): Finding[] {
  return s.unreadable.map(u => {
    const scoped = !CLUSTER_SCOPED.has(u.what)
    return {
      code: 'OSD_CANNOT_READ',
      severity: 'warning',
      object: refOf(u.what, { name: '*', namespace: scoped ? s.namespace : undefined }),
      problem: `could not read ${u.what}: ${oneLine(u.reason, 200)}; the checks that need it did not run`,
      fix: `run doctor with credentials that may list ${u.what} (kubectl auth can-i list ${u.what.toLowerCase()}${scoped ? ` -n ${s.namespace}` : ''})`
    }
  })
}
