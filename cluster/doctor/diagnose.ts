/**
 * Every check over one Snapshot: the findings (errors first, then warnings, each group in
 * the order of the checks below) and the objects looked at.
 */
import { refText, type Finding } from './findings.js'
import { podRef, refOf } from './pod-facts.js'
import type { Snapshot } from './snapshot.js'
import { chartWebhooks } from './webhooks.js'
import { checkUnreadable } from './checks/unreadable.js'
import { checkWebhookRegistration } from './checks/webhook-registration.js'
import { checkWebhookCaBundle } from './checks/webhook-ca-bundle.js'
import { checkWebhookEndpoints } from './checks/webhook-endpoints.js'
import { checkNamespaceExcluded } from './checks/namespace-excluded.js'
import { checkWorkloadAnnotations } from './checks/workload-annotations.js'
import { checkPodsNotInjected } from './checks/pod-not-injected.js'
import { checkDeniedPods } from './checks/denied-pods.js'
import { checkSidecarsNotReady } from './checks/sidecar-not-ready.js'
import { checkModelVolumes } from './checks/model-volume.js'
import { checkModelImages } from './checks/model-image.js'
import { checkImagePulls } from './checks/image-pull.js'

export const CHECKS: ReadonlyArray<(s: Snapshot) => Finding[]> = [
  checkWebhookRegistration,
  checkWebhookCaBundle,
  checkWebhookEndpoints,
  checkNamespaceExcluded,
  checkWorkloadAnnotations,
  checkPodsNotInjected,
  checkDeniedPods,
  checkSidecarsNotReady,
  checkModelVolumes,
  checkModelImages,
  checkImagePulls,
  checkUnreadable
]

export interface Diagnosis {
  findings: Finding[]
  /** The objects the checks looked at, as `Kind namespace/name`. */
  checked: string[]
}

export function diagnose (s: Snapshot): Diagnosis {
  const all = CHECKS.flatMap(check => check(s))
  const findings = [...all.filter(f => f.severity === 'error'), ...all.filter(f => f.severity === 'warning')]
  const checked = [
    ...chartWebhooks(s).map(w => refOf('MutatingWebhookConfiguration', w.config.metadata)),
    ...(s.namespaceObject === undefined ? [] : [refOf('Namespace', { name: s.namespace })]),
    ...s.workloads.map(w => refOf(w.kind ?? 'Workload', w.metadata)),
    ...s.pods.map(podRef)
  ].map(refText)
  return { findings, checked: [...new Set(checked)] }
}
