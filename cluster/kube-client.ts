/**
 * The connection to a cluster's API server for the commands that read or change a live
 * cluster (`doctor`, `rollout`): kubeconfig from --kubeconfig, $KUBECONFIG or ~/.kube/config,
 * or the pod's service account when run in a cluster, as kubectl finds it
 * (@kubernetes/client-node's loadFromDefault).
 */
import { KubeConfig } from '@kubernetes/client-node'

export interface KubeTarget {
  /** --kubeconfig: a file instead of the default search. */
  kubeconfig?: string
  /** --context: a context of the kubeconfig instead of its current one. */
  context?: string
}

export function loadKubeConfig (target: KubeTarget = {}): KubeConfig {
  const kc = new KubeConfig()
  if (target.kubeconfig !== undefined) kc.loadFromFile(target.kubeconfig)
  else kc.loadFromDefault()
  if (target.context !== undefined) kc.setCurrentContext(target.context)
  return kc
}

/** The namespace of the current context (kubectl's default when -n is not given). */
export function currentNamespace (kc: KubeConfig): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default'
}
