/** The chart's webhook is registered at all (OSD_WEBHOOK_NOT_REGISTERED). */
import type { Finding } from '../findings.js'
import { WEBHOOK_NAME } from '../pod-facts.js'
import type { Snapshot } from '../snapshot.js'
import { chartWebhooks } from '../webhooks.js'

export function checkWebhookRegistration (s: Snapshot): Finding[] {
  if (s.webhookConfigurations === undefined) return [] // unreadable: OSD_CANNOT_READ says so
  if (chartWebhooks(s).length > 0) return []
  const where = s.releaseNamespace === undefined ? '' : ` with its Service in namespace ${s.releaseNamespace}`
  return [{
    code: 'OSD_WEBHOOK_NOT_REGISTERED',
    severity: 'error',
    object: { kind: 'MutatingWebhookConfiguration', name: WEBHOOK_NAME },
    problem: `no MutatingWebhookConfiguration has the webhook ${WEBHOOK_NAME}${where}: the API server sends no pod to the injector, so no pod gets a sidecar`,
    fix: 'install the chart (helm install onnx-sidecar ./helm/onnx-sidecar --namespace onnx-sidecar --create-namespace), or helm upgrade the release if its webhook configuration was deleted'
  }]
}
