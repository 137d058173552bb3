/**
 * What `onnx-sidecar doctor` reports: findings, each with a stable code, a severity, the
 * object it is about, what is wrong and what to do (one line each). Every code is listed in
 * docs/troubleshooting.md (test/cluster/doctor/codes.test.ts checks it).
 */

export type Severity = 'error' | 'warning'

/** Every code doctor can report, with the one-line title docs/troubleshooting.md uses. */
export const CODES = {
  OSD_WEBHOOK_NOT_REGISTERED: 'no MutatingWebhookConfiguration registers inject.onnx-sidecar.io',
  OSD_WEBHOOK_CA_INVALID: 'the webhook\'s caBundle is empty or not a PEM certificate',
  OSD_WEBHOOK_CA_EXPIRING: 'the webhook\'s CA certificate expires within 30 days',
  OSD_WEBHOOK_CA_EXPIRED: 'the webhook\'s CA certificate has expired (or is not valid yet)',
  OSD_WEBHOOK_NO_ENDPOINTS: 'the injector\'s Service has no ready endpoints',
  OSD_WEBHOOK_CALL_FAILED: 'the API server could not call the injector',
  OSD_NAMESPACE_EXCLUDED: 'the webhook never sees pods of this namespace',
  OSD_ANNOTATION_ON_WORKLOAD: 'onnx-sidecar.io annotations on the workload\'s metadata, not its pod template',
  OSD_POD_CREATED_BEFORE_WEBHOOK: 'a pod that asks for a model was created before the webhook was registered',
  OSD_POD_NOT_INJECTED: 'a pod that asks for a model has no sidecar',
  OSD_POD_DENIED: 'the injector denied a controller\'s pods',
  OSD_SIDECAR_NOT_READY: 'the sidecar is not ready',
  OSD_MODEL_VOLUME_MISSING: 'the model volume\'s PersistentVolumeClaim does not exist',
  OSD_MODEL_VOLUME_PENDING: 'the model volume\'s PersistentVolumeClaim is not bound',
  OSD_IMAGE_VOLUME_UNSUPPORTED: 'onnx-sidecar.io/model-image on a cluster without image volumes',
  OSD_IMAGE_PULL_FAILED: 'an image (the sidecar, the app or the model image) cannot be pulled',
  OSD_CANNOT_READ: 'doctor could not read some objects (RBAC), so some checks did not run'
} as const

export type FindingCode = keyof typeof CODES

/** The object a finding is about: `Deployment shop/recommender`, `MutatingWebhookConfiguration onnx-sidecar`. */
export interface ObjectRef {
  kind: string
  name: string
  namespace?: string
}

export interface Finding {
  code: FindingCode
  severity: Severity
  object: ObjectRef
  /** What is wrong, one line. */
  problem: string
  /** What to do, one line. */
  fix: string
}

export function refText (ref: ObjectRef): string {
  return `${ref.kind} ${ref.namespace === undefined ? '' : `${ref.namespace}/`}${ref.name}`
}

/** One line: newlines and runs of blanks in quoted cluster text become single spaces. */
export function oneLine (text: string, max = 400): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`
}

/** An API timestamp as doctor prints it, to the second (`2026-05-01T00:00:00Z`); as given when it does not parse. */
export function timeText (t: string | number | undefined): string {
  if (t === undefined) return '?'
  const ms = typeof t === 'number' ? t : Date.parse(t)
  return Number.isNaN(ms) ? String(t) : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}
