/**
 * Pods a controller could not create because of the webhook, from the controller's
 * FailedCreate events: the injector denied them (OSD_POD_DENIED, the denial quoted), or the
 * API server could not call the injector (OSD_WEBHOOK_CALL_FAILED). An object whose latest
 * SuccessfulCreate came after its latest FailedCreate has recovered and is not reported.
 */
import { oneLine, timeText, type Finding } from '../findings.js'
import { WEBHOOK_NAME, eventMs, refOf } from '../pod-facts.js'
import type { Event, Snapshot } from '../snapshot.js'

const CONTROLLERS = new Set(['ReplicaSet', 'Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'ReplicationController'])
const DENIED = `admission webhook "${WEBHOOK_NAME}" denied the request: `

/** The Deployment of a ReplicaSet, for the fix. */
function templateOwner (e: Event, s: Snapshot): string {
  const name = e.involvedObject?.name ?? ''
  const kind = e.involvedObject?.kind ?? ''
  if (kind === 'ReplicaSet') {
    const rs = s.workloads.find(w => w.kind === 'ReplicaSet' && w.metadata?.name === name)
    const dep = rs?.metadata?.ownerReferences?.find(o => o.kind === 'Deployment')?.name
    if (dep !== undefined) return `Deployment ${dep}`
  }
  return `${kind} ${name}`
}

export function checkDeniedPods (s: Snapshot): Finding[] {
  const latest = new Map<string, { failed?: Event, created: number }>()
  for (const e of s.events) {
    const io = e.involvedObject
    if (io?.kind === undefined || !CONTROLLERS.has(io.kind)) continue
    const key = `${io.kind}/${io.name ?? ''}`
    const entry = latest.get(key) ?? { created: 0 }
    if (e.reason === 'SuccessfulCreate') entry.created = Math.max(entry.created, eventMs(e))
    if (e.reason === 'FailedCreate' && (e.message ?? '').includes(`"${WEBHOOK_NAME}"`) && (entry.failed === undefined || eventMs(e) >= eventMs(entry.failed))) entry.failed = e
    latest.set(key, entry)
  }
  const out: Finding[] = []
  for (const { failed, created } of latest.values()) {
    if (failed === undefined || created > eventMs(failed)) continue
    const io = failed.involvedObject ?? {}
    const object = refOf(io.kind ?? 'Object', { name: io.name, namespace: io.namespace ?? s.namespace })
    const message = failed.message ?? ''
    const times = failed.count !== undefined && failed.count > 1 ? ` (${failed.count} times, last ${timeText(eventMs(failed))})` : ''
    const at = message.indexOf(DENIED)
    if (at >= 0) {
      out.push({
        code: 'OSD_POD_DENIED',
        severity: 'error',
        object,
        problem: `the injector denied its pods${times}: ${oneLine(message.slice(at + DENIED.length))}`,
        fix: `fix the annotations in ${templateOwner(failed, s)}'s pod template as the message says (docs/annotations.md); the controller retries by itself`
      })
    } else {
      out.push({
        code: 'OSD_WEBHOOK_CALL_FAILED',
        severity: 'error',
        object,
        problem: `the API server could not call the injector, so pods were not created${times}: ${oneLine(message.replace(/^Error creating: /, ''))}`,
        fix: 'check the injector\'s pods and Service (onnx-sidecar doctor reports missing endpoints), its certificate against the caBundle, and any NetworkPolicy between the API server and the injector'
      })
    }
  }
  return out
}
