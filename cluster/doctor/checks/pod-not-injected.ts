/**
 * Pods that ask for a model but have no sidecar: created before the webhook was registered
 * (OSD_POD_CREATED_BEFORE_WEBHOOK), or not injected for another reason that the pod and the
 * webhook show (OSD_POD_NOT_INJECTED). Pods of an excluded namespace, or of a cluster with no
 * webhook at all, are left to those findings.
 */
import { timeText, type Finding } from '../findings.js'
import { mismatch } from '../label-selector.js'
import { STATUS_ANNOTATION, isGone, isInjected, podRef, recreateHint, wantsModel } from '../pod-facts.js'
import type { Pod, Snapshot } from '../snapshot.js'
import { chartWebhooks, registeredMs, type ChartWebhook } from '../webhooks.js'
import { namespaceExclusion } from './namespace-excluded.js'

function checkOne (pod: Pod, s: Snapshot, hooks: ChartWebhook[]): Finding | undefined {
  const object = podRef(pod)
  const again = recreateHint(pod, s.workloads)
  const created = Date.parse(pod.metadata?.creationTimestamp ?? '')
  const registered = hooks.map(registeredMs).filter((t): t is number => t !== undefined)
  if (!Number.isNaN(created) && registered.length > 0 && created < Math.min(...registered)) {
    return {
      code: 'OSD_POD_CREATED_BEFORE_WEBHOOK',
      severity: 'error',
      object,
      problem: `the pod asks for a model but was created (${timeText(created)}) before the webhook was registered (${timeText(Math.min(...registered))}): the injector acts on pod creation only`,
      fix: again
    }
  }
  if (pod.metadata?.annotations?.[STATUS_ANNOTATION] !== undefined) {
    return {
      code: 'OSD_POD_NOT_INJECTED',
      severity: 'error',
      object,
      problem: `the pod carries ${STATUS_ANNOTATION} but has no onnx-sidecar container: the record was copied from an injected pod (kubectl get -o yaml | kubectl apply), so the injector took the pod as injected and skipped it`,
      fix: `remove ${STATUS_ANNOTATION} from the manifest and apply it again`
    }
  }
  const selector = hooks.map(h => mismatch(h.webhook.objectSelector, pod.metadata?.labels)).find(m => m !== undefined)
  if (selector !== undefined) {
    return {
      code: 'OSD_POD_NOT_INJECTED',
      severity: 'error',
      object,
      problem: `the webhook's objectSelector does not match the pod's labels (${selector} does not hold), so the API server never called the injector for it`,
      fix: `give the pod template the labels the chart's webhook.objectSelector asks for, or change webhook.objectSelector; then ${again}`
    }
  }
  const ignore = hooks.some(h => h.webhook.failurePolicy === 'Ignore')
  return {
    code: 'OSD_POD_NOT_INJECTED',
    severity: 'error',
    object,
    problem: ignore
      ? 'the pod asks for a model but has no sidecar: the injector could not be reached when the pod was created, and failurePolicy Ignore admitted it without one'
      : s.namespaceObject === undefined
        ? 'the pod asks for a model but has no sidecar; the namespace could not be read, so whether the webhook\'s namespaceSelector excludes it is unknown'
        : 'the pod asks for a model but has no sidecar, and neither the webhook\'s selectors nor its registration time explain it',
    fix: `check the injector is up (its pods, its log for this pod), then ${again}`
  }
}

export function checkPodsNotInjected (s: Snapshot): Finding[] {
  const hooks = chartWebhooks(s)
  if (s.webhookConfigurations !== undefined && hooks.length === 0) return [] // OSD_WEBHOOK_NOT_REGISTERED
  if (namespaceExclusion(s) !== undefined) return [] // OSD_NAMESPACE_EXCLUDED
  return s.pods
    .filter(p => wantsModel(p.metadata) && !isInjected(p) && !isGone(p))
    .map(p => checkOne(p, s, hooks))
    .filter((f): f is Finding => f !== undefined)
}
