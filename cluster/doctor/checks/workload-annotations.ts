/**
 * `onnx-sidecar.io/*` annotations on a Deployment's (StatefulSet's, DaemonSet's, Job's) own
 * metadata instead of its pod template's: the injector sees pods, and pods get the
 * template's annotations only. The most common mistake.
 */
import type { Finding } from '../findings.js'
import { MODEL_KEY, STATUS_ANNOTATION, refOf } from '../pod-facts.js'
import { PREFIX } from '../../../injector/annotations.js'
import type { Snapshot, Workload } from '../snapshot.js'

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job'])

function ours (annotations: Record<string, string> | undefined): string[] {
  return Object.keys(annotations ?? {}).filter(k => k.startsWith(PREFIX) && k !== STATUS_ANNOTATION)
}

function checkOne (w: Workload): Finding | undefined {
  const kind = w.kind ?? ''
  if (!WORKLOADS.has(kind)) return undefined
  const onWorkload = ours(w.metadata?.annotations)
  if (onWorkload.length === 0) return undefined
  const template = w.spec?.template?.metadata?.annotations ?? {}
  const misplaced = onWorkload.filter(k => template[k] === undefined)
  if (misplaced.length === 0) return undefined
  const object = refOf(kind, w.metadata)
  const where = kind === 'Job' ? 'spec.template.metadata.annotations' : 'spec.template.metadata.annotations (the pod template)'
  if (template[MODEL_KEY] === undefined) {
    return {
      code: 'OSD_ANNOTATION_ON_WORKLOAD',
      severity: 'error',
      object,
      problem: `${misplaced.join(', ')} ${misplaced.length === 1 ? 'is' : 'are'} on the ${kind}'s own metadata, and its pod template has no ${MODEL_KEY}: the injector sees the pods, which get the template's annotations only, so no pod gets a sidecar`,
      fix: `move the annotations to ${where}; changing the template rolls the pods, and the new ones are injected`
    }
  }
  return {
    code: 'OSD_ANNOTATION_ON_WORKLOAD',
    severity: 'warning',
    object,
    problem: `${misplaced.join(', ')} ${misplaced.length === 1 ? 'is' : 'are'} on the ${kind}'s own metadata, not its pod template: the sidecar is injected but ignores ${misplaced.length === 1 ? 'it' : 'them'}`,
    fix: `move ${misplaced.length === 1 ? 'it' : 'them'} to ${where}`
  }
}

export function checkWorkloadAnnotations (s: Snapshot): Finding[] {
  return s.workloads
    .map(checkOne)
    .filter((f): f is Finding => f !== undefined)
}
