/**
 * `onnx-sidecar rollout start|status|promote|abort DEPLOYMENT`: one rollout per
 * Deployment, decided once from the evidence of all its pods (docs/rollouts.md, "Deciding
 * for the whole Deployment"). Exit codes: 0 promote (or done), 1 roll back, 3 inconclusive
 * or timed out, 2 usage or API error.
 */
import { ConfigError, helpText, processEnv, readConfig } from '../../common/config.js'
import { currentNamespace, loadKubeConfig } from '../kube-client.js'
import { abortPatch, promotePatch, RolloutError, startPatch } from './deployment.js'
import type { Thresholds } from './judge.js'
import { kubeRolloutApi, type RolloutApi } from './kube-api.js'
import { rolloutOptions } from './options.js'
import { statusJson, statusText } from './render.js'
import { EXIT, inProgress, status, type StatusReport } from './status.js'

const USAGE = `usage: onnx-sidecar rollout start|status|promote|abort DEPLOYMENT [options]

  start DEPLOYMENT --candidate N|MODEL:N [--canary PCT] [--model-image REF]
                     put the candidate on the pod template (refuses one recorded as rejected)
  status DEPLOYMENT [--wait [--timeout 10m]] [-o text|json]
                     pool the evidence of the Deployment's ready pods and decide as a pod would
                     (exit 0 promote, 1 roll back, 3 inconclusive or not yet decided)
  promote DEPLOYMENT [--force]
                     the candidate becomes the pinned live version (needs a promote decision)
  abort DEPLOYMENT   the candidate goes and is recorded as rejected`

export interface RolloutDeps {
  api?: RolloutApi
  out?: (text: string) => void
  err?: (text: string) => void
  now?: () => Date
  sleep?: (ms: number) => Promise<void>
}

type Options = ReturnType<typeof readConfig<ReturnType<typeof rolloutOptions>>>

function thresholds (o: Options): Thresholds {
  const rollbackBelow = o.rollbackBelow < 0 ? o.minAgreement : o.rollbackBelow
  if (rollbackBelow > o.minAgreement) throw new ConfigError(`flag --rollback-below: ${rollbackBelow} must not be above --min-agreement ${o.minAgreement}`)
  const maxRequests = o.maxRequests === 0 ? o.minRequests * 16 : o.maxRequests
  if (maxRequests < o.minRequests) throw new ConfigError(`flag --max-requests: ${maxRequests} must not be below --min-requests ${o.minRequests}`)
  return { minRequests: o.minRequests, maxRequests, minAgreement: o.minAgreement, confidence: o.confidence, maxErrorRateDelta: o.maxErrorRateDelta, minErrors: o.minErrors, maxLatencyRatio: o.maxLatencyRatio, latencySlackMs: o.latencySlackMs, rollbackBelow, maxCalibrationDrift: o.maxCalibrationDrift }
}

async function watch (api: RolloutApi, ns: string, name: string, o: Options, deps: Required<Omit<RolloutDeps, 'api'>>): Promise<{ report: StatusReport, timedOut: boolean }> {
  const t = thresholds(o)
  const until = Date.now() + o.timeout
  for (;;) {
    const report = await status(api, ns, name, t)
    if (!o.wait || report.action !== 'observing') return { report, timedOut: false }
    if (Date.now() + o.interval > until) return { report, timedOut: true }
    deps.err(`${name}: ${report.pooled.requests} requests compared in ${report.pods.length} pods, ${report.action}; next look in ${o.interval / 1000} s\n`)
    await deps.sleep(o.interval)
  }
}

async function run (verb: string, name: string, o: Options, api: RolloutApi, ns: string, deps: Required<Omit<RolloutDeps, 'api'>>): Promise<number> {
  if (verb === 'status') {
    const { report, timedOut } = await watch(api, ns, name, o, deps)
    deps.out(o.output === 'json' ? statusJson(report) : statusText(report))
    if (timedOut) deps.err(`${name}: not decided within --timeout ${o.timeout / 1000} s\n`)
    return EXIT[report.action]
  }
  const d = await api.deployment(ns, name)
  if (verb === 'start') {
    if (o.candidate === '') throw new ConfigError('flag --candidate is required by start (N or MODEL:N)')
    await api.patch(ns, name, startPatch(d, { candidate: o.candidate, canary: o.canary, modelImage: o.modelImage }))
    const spec = inProgress(await api.deployment(ns, name))
    deps.out(`deployment ${ns}/${name}: candidate ${spec.model}:${spec.candidate} next to live ${spec.live ?? '(the version policy\'s)'} (${spec.canary === undefined ? 'shadow' : `canary ${spec.canary} %`}); the pods roll now\n`)
    return 0
  }
  if (verb === 'promote') {
    const spec = inProgress(d)
    const report = await status(api, ns, name, thresholds(o))
    if (report.action !== 'promote' && !o.force) {
      throw new RolloutError(`deployment ${ns}/${name}: the pooled evidence says ${report.action}, not promote (${report.pooled.verdict.why}); use --force to promote anyway`, EXIT[report.action])
    }
    const why = report.action === 'promote' ? report.pooled.verdict.why : `forced while ${report.action}: ${report.pooled.verdict.why}`
    await api.patch(ns, name, promotePatch(d, why, deps.now()))
    deps.out(`deployment ${ns}/${name}: ${spec.model}:${spec.candidate} promoted (was ${spec.live ?? '?'}); new pods start with it\n`)
    return 0
  }
  const spec = inProgress(d)
  const report = await status(api, ns, name, thresholds(o)).catch(() => undefined)
  await api.patch(ns, name, abortPatch(d, report === undefined ? 'aborted' : `aborted while ${report.action}: ${report.pooled.verdict.why}`, deps.now()))
  deps.out(`deployment ${ns}/${name}: ${spec.model}:${spec.candidate} aborted and recorded as rejected; live stays ${spec.live ?? '?'}\n`)
  return 0
}

function kubeConfig (o: Options): ReturnType<typeof loadKubeConfig> {
  let kc
  try {
    kc = loadKubeConfig({ kubeconfig: o.kubeconfig === '' ? undefined : o.kubeconfig, context: o.context === '' ? undefined : o.context })
  } catch (err) {
    throw new RolloutError(`kubeconfig: ${(err as Error).message}`)
  }
  if (kc.getCurrentCluster() === null) throw new RolloutError(`kubeconfig: ${o.context === '' ? 'its current context has no cluster' : `it has no context ${o.context}`}`)
  return kc
}

export async function rolloutCommand (argv: string[], injected: RolloutDeps = {}): Promise<number> {
  const deps = {
    out: injected.out ?? ((t: string) => { process.stdout.write(t) }),
    err: injected.err ?? ((t: string) => { process.stderr.write(t) }),
    now: injected.now ?? (() => new Date()),
    sleep: injected.sleep ?? (async (ms: number) => await new Promise<void>(resolve => setTimeout(resolve, ms)))
  }
  const table = rolloutOptions()
  const o = readConfig(table, argv, processEnv())
  if (o.help) {
    deps.out(helpText(USAGE, table))
    return 0
  }
  const [verb, name, ...extra] = o._
  if (verb === undefined || !['start', 'status', 'promote', 'abort'].includes(verb)) throw new ConfigError(`${verb === undefined ? 'a subcommand is required' : `unknown subcommand '${verb}'`}: start, status, promote or abort`)
  if (name === undefined || name === '') throw new ConfigError(`${verb}: the Deployment's name is required`)
  if (extra.length > 0) throw new ConfigError(`${verb}: unexpected argument '${extra[0] as string}'`)
  try {
    let api = injected.api
    let ns = o.namespace
    if (api === undefined || ns === '') {
      const kc = kubeConfig(o)
      api ??= kubeRolloutApi(kc)
      if (ns === '') ns = currentNamespace(kc)
    }
    return await run(verb, name, o, api, ns, deps)
  } catch (err) {
    if (!(err instanceof RolloutError)) throw err
    deps.err(`onnx-sidecar rollout ${verb}: ${err.message}\n`)
    return err.exitCode
  }
}
