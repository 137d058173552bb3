/**
 * The chart's webhook among the cluster's MutatingWebhookConfigurations: every webhook
 * named `inject.onnx-sidecar.io` (the chart's configuration is named after the release,
 * the webhook is not), only those whose Service lives in --release-namespace when given.
 */
import { WEBHOOK_NAME } from './pod-facts.js'
import type { Snapshot, Webhook, WebhookConfiguration } from './snapshot.js'

export interface ChartWebhook {
  config: WebhookConfiguration
  webhook: Webhook
}

export function chartWebhooks (s: Snapshot): ChartWebhook[] {
  const out: ChartWebhook[] = []
  for (const config of s.webhookConfigurations ?? []) {
    for (const webhook of config.webhooks ?? []) {
      if (webhook.name !== WEBHOOK_NAME) continue
      const ns = webhook.clientConfig?.service?.namespace
      if (s.releaseNamespace !== undefined && ns !== undefined && ns !== s.releaseNamespace) continue
      out.push({ config, webhook })
    }
  }
  return out
}

/** When the webhook was registered (its configuration's creation), in ms; undefined when unknown. */
export function registeredMs (w: ChartWebhook): number | undefined {
  const t = w.config.metadata?.creationTimestamp
  const ms = t === undefined ? NaN : Date.parse(t)
  return Number.isNaN(ms) ? undefined : ms
}
