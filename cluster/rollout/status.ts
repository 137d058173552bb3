/**
 * `rollout status`: the evidence of every Ready pod of the Deployment's current
 * ReplicaSet, pooled, judged by the pod's rule (judge.ts).
 */
import type { V1Deployment } from '@kubernetes/client-node'
import { rolloutOf, RolloutError, type RolloutSpec } from './deployment.js'
import { evidenceOf, pool, type Evidence } from './evidence.js'
import { judge, type Judgement, type Thresholds } from './judge.js'
import type { RolloutApi } from './kube-api.js'
import { parsePromText } from './prom-text.js'

export type Action = 'promote' | 'rollback' | 'inconclusive' | 'observing'

export interface PodReport {
  name: string
  /** Why this pod's evidence is missing (it is left out of the pool). */
  error?: string
  requests: number
  rows: number
  agreement: number | null
  candidateErrors: number
}

export interface StatusReport {
  namespace: string
  deployment: string
  model: string
  live: string
  candidate: string
  mode: string
  pods: PodReport[]
  pooled: Judgement
  action: Action
}

function podReport (name: string, e: Evidence | undefined): PodReport {
  const s = e?.sums
  return { name, requests: s?.requests ?? 0, rows: s?.rows ?? 0, agreement: s === undefined || s.rows === 0 ? null : s.agreeing / s.rows, candidateErrors: e?.answers.candidate.error ?? 0 }
}

export function inProgress (d: V1Deployment): RolloutSpec & { candidate: string } {
  const spec = rolloutOf(d)
  if (spec.candidate === undefined) throw new RolloutError(`deployment ${d.metadata?.name ?? ''}: no rollout in progress (start one with 'onnx-sidecar rollout start')`)
  return spec as RolloutSpec & { candidate: string }
}

export async function status (api: RolloutApi, namespace: string, name: string, t: Thresholds): Promise<StatusReport> {
  const d = await api.deployment(namespace, name)
  const spec = inProgress(d)
  const targets = await api.pods(d)
  const pods: PodReport[] = []
  const parts: Evidence[] = []
  let live = spec.live
  for (const p of targets) {
    let found: Evidence | undefined
    try {
      const mine = evidenceOf(parsePromText(await api.metrics(namespace, p)), spec.model).filter(e => e.candidate === spec.candidate)
      live ??= mine[0]?.live
      found = mine.find(e => e.live === live)
    } catch (err) {
      pods.push({ ...podReport(p.name, undefined), error: (err as Error).message })
      continue
    }
    if (found !== undefined) parts.push(found)
    pods.push(podReport(p.name, found))
  }
  const unread = pods.filter(p => p.error !== undefined)
  if (unread.length > 0 && unread.length === pods.length) throw new RolloutError(`deployment ${namespace}/${name}: no pod's evidence could be read (${unread[0]?.error ?? ''})`)
  const pooled = judge(pool(parts, spec.model, live ?? '', spec.candidate), t)
  const action: Action = pooled.verdict.action ?? 'observing'
  return {
    namespace,
    deployment: name,
    model: spec.model,
    live: live ?? '?',
    candidate: spec.candidate,
    mode: spec.canary === undefined ? 'shadow' : `canary ${spec.canary} %`,
    pods,
    pooled,
    action
  }
}

export const EXIT: Record<Action, number> = { promote: 0, rollback: 1, inconclusive: 3, observing: 3 }
