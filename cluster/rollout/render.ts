/** `rollout status` output: a table for people (text) and one JSON object for scripts. */
import type { StatusReport } from './status.js'

const r = (x: number): string => String(Math.round(x * 1e4) / 1e4)
const pct = (x: number | null): string => x === null ? '-' : `${r(x * 100)} %`

function table (rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map(row => (row[i] ?? '').length)))
  return rows.map(row => row.map((c, i) => i === row.length - 1 ? c : c.padEnd(widths[i] as number)).join('  ').trimEnd()).join('\n')
}

export function statusText (s: StatusReport): string {
  const p = s.pooled
  const v = p.verdict
  const rows = [['POD', 'REQUESTS', 'ROWS', 'AGREEMENT', 'CANDIDATE ERRORS']]
  for (const pod of s.pods) rows.push([pod.name, String(pod.requests), String(pod.rows), pod.error === undefined ? pct(pod.agreement) : `unreadable: ${pod.error}`, String(pod.candidateErrors)])
  rows.push(['pooled', String(p.requests), String(p.rows), pct(p.rows === 0 ? null : p.agreement), String(p.arms.candidate.errors)])
  const read = s.pods.filter(x => x.error === undefined).length
  const lines = [
    `deployment ${s.namespace}/${s.deployment}: model ${s.model}, live ${s.live}, candidate ${s.candidate} (${s.mode}); evidence of ${read} of ${s.pods.length} ready pods`,
    '',
    table(rows),
    '',
    `bounds: [${r(v.lower)}, ${r(v.upper)}] over ${r(p.effective)} effective rows at confidence ${r(v.confidence)} (${p.look < 0 ? 'before the first decision point' : `decision point ${p.look + 1}`})`,
    `errors: live ${p.arms.live.errors} of ${p.arms.live.requests}, candidate ${p.arms.candidate.errors} of ${p.arms.candidate.requests}`,
    `latency p99: ${p.p99 === undefined ? 'too few pairs' : `live ${r(p.p99.live)} ms, candidate ${r(p.p99.candidate)} ms`}`,
    `calibration: ${p.calibration === undefined ? 'no probability output' : `class ${p.calibration.class}, mean candidate / mean live ${r(p.calibration.ratio)}`}`,
    `decision: ${s.action} (${v.why})`
  ]
  return lines.join('\n') + '\n'
}

export function statusJson (s: StatusReport): string {
  const p = s.pooled
  return JSON.stringify({
    namespace: s.namespace,
    deployment: s.deployment,
    model: s.model,
    live: s.live,
    candidate: s.candidate,
    mode: s.mode,
    pods: s.pods,
    pooled: {
      requests: p.requests,
      rows: p.rows,
      agreement: p.agreement,
      effective_rows: p.effective,
      lower: p.verdict.lower,
      upper: p.verdict.upper,
      confidence: p.verdict.confidence,
      decision_point: p.look + 1,
      errors: p.arms,
      latency_p99_ms: p.p99 ?? null,
      calibration: p.calibration ?? null
    },
    decision: s.action,
    rule: p.verdict.why
  }, null, 2) + '\n'
}
