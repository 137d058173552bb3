/**
 * Injected pods whose sidecar is not ready: its state (waiting reason, restarts, last
 * termination), the probe failures the kubelet reported, and the reason the sidecar itself
 * gives (its `model cannot be loaded` log line: the model and why, as the repository index
 * says it). Image pulls and volumes that hold the container in ContainerCreating are other
 * checks' findings.
 */
import { oneLine, timeText, type Finding } from '../findings.js'
import { SIDECAR, isGone, isInjected, podEvents, podRef, sidecarStatus } from '../pod-facts.js'
import type { ContainerStatus, Pod, Snapshot } from '../snapshot.js'
import { PULL_REASONS } from './image-pull.js'

const NOT_YET = new Set(['ContainerCreating', 'PodInitializing'])

/** The `model cannot be loaded` lines of the sidecar's log: `model: reason`, the latest per model. */
export function modelLoadReasons (log: string | undefined): string[] {
  const byModel = new Map<string, string>()
  for (const line of (log ?? '').split('\n')) {
    if (!line.includes('model cannot be loaded')) continue
    try {
      const entry = JSON.parse(line) as { msg?: unknown, model?: unknown, reason?: unknown }
      if (entry.msg !== 'model cannot be loaded') continue
      byModel.set(String(entry.model), `model '${String(entry.model)}': ${String(entry.reason)}`)
    } catch {
      // not a JSON line: not the sidecar's
    }
  }
  return [...byModel.values()]
}

function stateText (st: ContainerStatus): string {
  const w = st.state?.waiting
  if (w !== undefined) return `waiting (${w.reason ?? 'no reason'}${w.message === undefined ? '' : `: ${oneLine(w.message, 160)}`})`
  const term = st.state?.terminated
  if (term !== undefined) return `terminated (${term.reason ?? 'no reason'}, exit code ${term.exitCode ?? '?'})`
  if (st.state?.running !== undefined) return `running since ${timeText(st.state.running.startedAt)} but not ready`
  return 'not started'
}

function checkOne (pod: Pod, s: Snapshot): Finding | undefined {
  const st = sidecarStatus(pod)
  if (st === undefined || st.ready === true) return undefined
  const waiting = st.state?.waiting?.reason
  if (waiting !== undefined && (PULL_REASONS.has(waiting) || NOT_YET.has(waiting))) return undefined
  if (st.state === undefined) return undefined
  const parts = [`the ${SIDECAR} container is ${stateText(st)}`]
  const restarts = st.restartCount ?? 0
  if (restarts > 0) parts.push(`${restarts} restart${restarts === 1 ? '' : 's'}`)
  const last = st.lastState?.terminated
  if (last !== undefined) parts.push(`last terminated: ${last.reason ?? 'no reason'}, exit code ${last.exitCode ?? '?'}${last.finishedAt === undefined ? '' : ` at ${timeText(last.finishedAt)}`}`)
  const probe = podEvents(s.events, pod).filter(e => e.reason === 'Unhealthy' && /probe failed/i.test(e.message ?? '')).at(-1)
  if (probe !== undefined) parts.push(`kubelet: ${oneLine(probe.message ?? '', 200)}${probe.count !== undefined && probe.count > 1 ? ` (${probe.count} times)` : ''}`)
  const reasons = modelLoadReasons(s.sidecarLogs[pod.metadata?.name ?? ''])
  if (reasons.length > 0) parts.push(`the sidecar says: ${oneLine(reasons.join('; '), 600)}`)
  const ns = pod.metadata?.namespace ?? s.namespace
  const logs = `kubectl logs ${pod.metadata?.name ?? ''} -c ${SIDECAR} -n ${ns}`
  const oom = last?.reason === 'OOMKilled' || st.state?.terminated?.reason === 'OOMKilled'
  const fix = oom
    ? 'the sidecar ran out of memory: raise onnx-sidecar.io/memory-limit (the models\' weights plus about 110 MiB and 12 MiB per worker), or lower its workers'
    : reasons.length > 0
      ? `put the model on the model volume as <model>/<version>/model.onnx, or correct onnx-sidecar.io/model; the sidecar picks it up without a restart (${logs})`
      : `read the sidecar's log: ${logs}`
  // Running, never restarted, nothing reported yet: most likely still loading its models.
  const loading = st.state.running !== undefined && restarts === 0 && probe === undefined && reasons.length === 0
  return {
    code: 'OSD_SIDECAR_NOT_READY',
    severity: loading ? 'warning' : 'error',
    object: podRef(pod),
    problem: loading ? `${parts.join('; ')}: probably still loading and warming its models` : parts.join('; '),
    fix: loading ? `wait for the startup probe (up to 5 minutes by default); if it stays so, ${logs}` : fix
  }
}

export function checkSidecarsNotReady (s: Snapshot): Finding[] {
  return s.pods
    .filter(p => isInjected(p) && !isGone(p))
    .map(p => checkOne(p, s))
    .filter((f): f is Finding => f !== undefined)
}
