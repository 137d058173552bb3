/**
 * The injector's Service has a ready endpoint (EndpointSlices labelled with the Service's
 * name). A webhook called by URL has no Service to look at.
 */
import type { Finding } from '../findings.js'
import type { Snapshot } from '../snapshot.js'
import { chartWebhooks } from '../webhooks.js'

export function serviceKey (namespace: string, name: string): string {
  return `${namespace}/${name}`
}

export function checkWebhookEndpoints (s: Snapshot): Finding[] {
  const out: Finding[] = []
  for (const { webhook } of chartWebhooks(s)) {
    const svc = webhook.clientConfig?.service
    if (svc?.name === undefined || svc.namespace === undefined) continue
    const slices = s.endpointSlices[serviceKey(svc.namespace, svc.name)]
    if (slices === undefined) continue // unreadable
    const ready = slices.flatMap(sl => sl.endpoints ?? []).filter(e => e.conditions?.ready !== false).length
    if (ready > 0) continue
    const failing = webhook.failurePolicy === 'Ignore'
      ? 'annotated pods are admitted without a sidecar (failurePolicy Ignore)'
      : 'annotated pods are refused (failurePolicy Fail) and their controllers keep retrying'
    out.push({
      code: 'OSD_WEBHOOK_NO_ENDPOINTS',
      severity: 'error',
      object: { kind: 'Service', namespace: svc.namespace, name: svc.name },
      problem: `the injector's Service has no ready endpoints: ${failing}`,
      fix: `look at the injector's pods: kubectl -n ${svc.namespace} get pods,deploy; kubectl -n ${svc.namespace} describe pods (image pull, crash, readiness)`
    })
  }
  return out
}
