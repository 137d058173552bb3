/**
 * The `rollout` command's options (docs/rollouts.md, "Deciding for the whole Deployment").
 * The thresholds default to the sidecar's (sidecar/models/rollout-config.ts ROLLOUT_DEFAULTS),
 * so the pooled decision is the one a pod with the same config.yaml would make.
 */
import { commonOptions, parse, type Option } from '../../common/config.js'
import { ROLLOUT_DEFAULTS } from '../../sidecar/models/rollout-config.js'

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** A duration as kubectl writes one (`90s`, `10m`, `1h30m`, `500ms`), in milliseconds. */
export function parseDuration (raw: string): number {
  const text = raw.trim()
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)]
  if (text === '' || parts.map(p => p[0]).join('') !== text) throw new Error(`'${raw}' is not a duration (for example 30s, 10m, 1h)`)
  return parts.reduce((ms, p) => ms + Number(p[1]) * (UNITS[p[2] as string] as number), 0)
}

export const ROLLOUT_CLI_DEFAULTS = Object.freeze({
  minAgreement: 0.98, // promote when the lower bound of per-row agreement is at least this
  interval: 10_000, // 10 seconds between polls of status --wait
  timeout: 600_000 // 10 minutes of status --wait
})

export function rolloutOptions () {
  const d = ROLLOUT_DEFAULTS
  const c = ROLLOUT_CLI_DEFAULTS
  const ms = (key: 'interval' | 'timeout'): string => `${c[key] / 1000}s`
  return {
    help: commonOptions().help,
    namespace: { flag: '--namespace', short: '-n', env: '', description: 'namespace of the Deployment', default: '', defaultText: "the kubeconfig context's, else default", parse: parse.string } as Option<string>,
    kubeconfig: { flag: '--kubeconfig', env: '', description: 'kubeconfig file', default: '', defaultText: '$KUBECONFIG, else ~/.kube/config, else the pod\'s service account', parse: parse.string } as Option<string>,
    context: { flag: '--context', env: '', description: 'kubeconfig context', default: '', defaultText: 'the current one', parse: parse.string } as Option<string>,
    candidate: { flag: '--candidate', env: '', description: 'start: the candidate version (N, or MODEL:N when the pods serve several models)', default: '', defaultText: 'none (required by start)', parse: parse.string } as Option<string>,
    canary: { flag: '--canary', env: '', description: 'start: percent of requests the candidate answers (1..50)', default: 0, defaultText: 'none: shadow', parse: parse.int(1, 50) } as Option<number>,
    modelImage: { flag: '--model-image', env: '', description: 'start: the model image holding both versions (a digest reference)', default: '', defaultText: "the pod template's", parse: parse.string } as Option<string>,
    wait: { flag: '--wait', env: '', description: 'status: poll until the pooled evidence decides', default: false, boolean: true, parse: parse.bool } as Option<boolean>,
    timeout: { flag: '--timeout', env: '', description: 'status --wait: how long to wait (30s, 10m, 1h)', default: c.timeout, defaultText: ms('timeout'), parse: parseDuration } as Option<number>,
    interval: { flag: '--interval', env: '', description: 'status --wait: time between polls', default: c.interval, defaultText: ms('interval'), parse: parseDuration } as Option<number>,
    output: { flag: '--output', short: '-o', env: '', description: 'status: text or json', default: 'text', parse: parse.oneOf('text', 'json') } as Option<'text' | 'json'>,
    force: { flag: '--force', env: '', description: 'promote without a promote decision', default: false, boolean: true, parse: parse.bool } as Option<boolean>,
    minAgreement: { flag: '--min-agreement', env: '', description: 'promote when the lower bound of per-row agreement is at least this (0..1)', default: c.minAgreement, parse: parse.number(0, 1) } as Option<number>,
    rollbackBelow: { flag: '--rollback-below', env: '', description: 'roll back when the upper bound is below this (0..1)', default: -1, defaultText: '--min-agreement', parse: parse.number(0, 1) } as Option<number>,
    confidence: { flag: '--confidence', env: '', description: 'confidence of the bounds over all decision points (0.5..0.9999)', default: d.confidence, parse: parse.number(0.5, 0.9999) } as Option<number>,
    minRequests: { flag: '--min-requests', env: '', description: 'compared requests (all pods) at the first decision point; later ones at 2x, 4x, ...', default: d.minRequests, parse: parse.int(2, 1e9) } as Option<number>,
    maxRequests: { flag: '--max-requests', env: '', description: 'compared requests at which the rollout is inconclusive', default: 0, defaultText: `${d.maxRequestsFactor} x --min-requests`, parse: parse.int(2, 1e12) } as Option<number>,
    maxErrorRateDelta: { flag: '--max-error-rate-delta', env: '', description: "the candidate's error rate may exceed live's by this", default: d.maxErrorRateDelta, parse: parse.number(0, 1) } as Option<number>,
    minErrors: { flag: '--min-errors', env: '', description: 'candidate errors before the error test may roll back', default: d.minErrors, parse: parse.int(1, 1e9) } as Option<number>,
    maxLatencyRatio: { flag: '--max-latency-ratio', env: '', description: "candidate p99 at most this x live's (+ --latency-slack-ms)", default: d.maxLatencyRatio, parse: parse.number(1, 1000) } as Option<number>,
    latencySlackMs: { flag: '--latency-slack-ms', env: '', description: 'milliseconds added to the latency limit', default: d.latencySlackMs, parse: parse.number(0, 1e6) } as Option<number>,
    maxCalibrationDrift: { flag: '--max-calibration-drift', env: '', description: 'probabilities: mean candidate / mean live within 1 +- this', default: d.maxCalibrationDrift, parse: parse.number(0, 1000) } as Option<number>
  }
}
