/**
 * The namespace is excluded from injection: the chart's namespaceSelector leaves out
 * kube-system, kube-public, kube-node-lease, the release namespace and
 * webhook.excludeNamespaces (by `kubernetes.io/metadata.name`), and every namespace
 * labelled `onnx-sidecar.io/injection=disabled` (the opt-out label). Reported only when
 * something in the namespace asks for a model.
 */
import type { Finding } from '../findings.js'
import { mismatch } from '../label-selector.js'
import { refOf, wantsModel } from '../pod-facts.js'
import type { Snapshot } from '../snapshot.js'
import { chartWebhooks } from '../webhooks.js'

export const OPT_OUT_LABEL = 'onnx-sidecar.io/injection'
const NAME_LABEL = 'kubernetes.io/metadata.name'

/** Why the chart's webhook skips this namespace, or undefined when it does not. */
export function namespaceExclusion (s: Snapshot): { requirement: string, key: string } | undefined {
  const ns = s.namespaceObject
  if (ns === undefined) return undefined
  // The API server sets kubernetes.io/metadata.name on every namespace.
  const labels = { [NAME_LABEL]: s.namespace, ...ns.metadata?.labels }
  for (const { webhook } of chartWebhooks(s)) {
    const requirement = mismatch(webhook.namespaceSelector, labels)
    if (requirement !== undefined) return { requirement, key: requirement.split(/[ =]/)[0] as string }
  }
  return undefined
}

export function checkNamespaceExcluded (s: Snapshot): Finding[] {
  const why = namespaceExclusion(s)
  if (why === undefined) return []
  const asking = s.pods.filter(p => wantsModel(p.metadata)).length +
    s.workloads.filter(w => w.kind !== 'ReplicaSet' && wantsModel(w.spec?.template?.metadata)).length
  if (asking === 0) return []
  const fix = why.key === OPT_OUT_LABEL
    ? `remove the opt-out label: kubectl label namespace ${s.namespace} ${OPT_OUT_LABEL}-, then re-create the pods (kubectl rollout restart)`
    : why.key === NAME_LABEL
      ? 'the chart never injects in kube-system, kube-public, kube-node-lease, its own namespace or webhook.excludeNamespaces: run the workload in another namespace, or drop it from webhook.excludeNamespaces'
      : `label the namespace to match the webhook's namespaceSelector (webhook.namespaceSelectorExpressions in the chart's values), then re-create the pods`
  return [{
    code: 'OSD_NAMESPACE_EXCLUDED',
    severity: 'error',
    object: refOf('Namespace', { name: s.namespace }),
    problem: `the webhook's namespaceSelector excludes this namespace (${why.requirement} does not hold), so ${asking} pod(s) or template(s) that ask for a model get no sidecar`,
    fix
  }]
}
