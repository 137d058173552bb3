/**
 * The webhook's caBundle: a PEM certificate (node:crypto's X509Certificate reads it), valid
 * now and for 30 more days. An empty one is an error unless the webhook is called by URL
 * (the API server then may trust the URL's certificate through its own roots).
 */
import { X509Certificate } from 'node:crypto'
import { oneLine, timeText, type Finding } from '../findings.js'
import type { Snapshot } from '../snapshot.js'
import { chartWebhooks, type ChartWebhook } from '../webhooks.js'
import { refOf } from '../pod-facts.js'

/** How long before expiry a CA is reported: 30 days. */
export const CA_WARN_MS = 30 * 24 * 3600 * 1000
const DAY_MS = 24 * 3600 * 1000

const RENEW = 'renew the CA: with the chart\'s self-signed TLS, helm upgrade after deleting the TLS Secret (a new CA is generated); with cert-manager, check the Certificate and cainjector'

function checkOne (w: ChartWebhook, now: Date): Finding | undefined {
  const object = refOf('MutatingWebhookConfiguration', w.config.metadata)
  const raw = w.webhook.clientConfig?.caBundle
  if (raw === undefined || raw === '') {
    if (w.webhook.clientConfig?.url !== undefined) return undefined
    return { code: 'OSD_WEBHOOK_CA_INVALID', severity: 'error', object, problem: 'the webhook has no caBundle: the API server cannot verify the injector\'s certificate and every call fails', fix: 'helm upgrade the release (tls.mode selfSigned fills it); with cert-manager, check the cert-manager.io/inject-ca-from annotation and that cainjector runs' }
  }
  let cert: X509Certificate
  try {
    cert = new X509Certificate(Buffer.from(raw, 'base64'))
  } catch (err) {
    return { code: 'OSD_WEBHOOK_CA_INVALID', severity: 'error', object, problem: `the webhook's caBundle is not a PEM certificate (${oneLine((err as Error).message, 120)}): the API server cannot verify the injector and every call fails`, fix: 'set webhook.caBundle to the PEM of the CA that signed the injector\'s certificate (helm upgrade), or let the chart generate it (tls.mode selfSigned)' }
  }
  const notAfter = Date.parse(cert.validTo)
  const notBefore = Date.parse(cert.validFrom)
  const t = now.getTime()
  const subject = oneLine(cert.subject)
  if (t > notAfter) {
    return { code: 'OSD_WEBHOOK_CA_EXPIRED', severity: 'error', object, problem: `the webhook's CA certificate (${subject}) expired on ${timeText(notAfter)}: the API server rejects the injector and every annotated pod fails or goes without a sidecar`, fix: RENEW }
  }
  if (t < notBefore) {
    return { code: 'OSD_WEBHOOK_CA_EXPIRED', severity: 'error', object, problem: `the webhook's CA certificate (${subject}) is not valid before ${timeText(notBefore)}: check the clock of the machine that made it`, fix: RENEW }
  }
  if (notAfter - t < CA_WARN_MS) {
    const days = Math.floor((notAfter - t) / DAY_MS)
    return { code: 'OSD_WEBHOOK_CA_EXPIRING', severity: 'warning', object, problem: `the webhook's CA certificate (${subject}) expires on ${timeText(notAfter)}, in ${days} days`, fix: RENEW }
  }
  return undefined
}

export function checkWebhookCaBundle (s: Snapshot): Finding[] {
  return chartWebhooks(s).map(w => checkOne(w, s.now)).filter((f): f is Finding => f !== undefined)
}
