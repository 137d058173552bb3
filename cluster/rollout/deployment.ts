/**
 * What a Deployment says about its rollout (the fleet contract of docs/rollouts.md), and
 * the JSON merge patches that start, promote and abort one. Pure: objects in, patches out.
 *
 *   pod template   onnx-sidecar.io/model ads:1 (live), onnx-sidecar.io/candidate "2" or
 *                  "ads:2", onnx-sidecar.io/canary "10", onnx-sidecar.io/model-image REF
 *   Deployment     onnx-sidecar.io/rollout-history (JSON list of what was decided),
 *                  onnx-sidecar.io/rejected-candidates (JSON list of "ads:2@<digest or volume>")
 *
 * A patch carries the Deployment's resourceVersion, so a change made by someone else
 * between the read and the patch fails (409) instead of being overwritten.
 */
export const KEY = {
  model: 'onnx-sidecar.io/model',
  candidate: 'onnx-sidecar.io/candidate',
  canary: 'onnx-sidecar.io/canary',
  modelImage: 'onnx-sidecar.io/model-image',
  history: 'onnx-sidecar.io/rollout-history',
  rejected: 'onnx-sidecar.io/rejected-candidates'
}

export class RolloutError extends Error {
  constructor (message: string, readonly exitCode = 2) {
    super(message)
    this.name = 'RolloutError'
  }
}

type Annotations = Record<string, string>

/** The parts of a Deployment this command reads. */
export interface DeploymentView {
  metadata?: { name?: string, namespace?: string, resourceVersion?: string, annotations?: Annotations }
  spec?: { template?: { metadata?: { annotations?: Annotations } } }
}

export interface ModelRef { name: string, version: string | undefined }

export interface RolloutSpec {
  model: string
  /** The pinned live version; undefined when the version policy picks it. */
  live: string | undefined
  candidate: string | undefined
  canary: number | undefined
  modelImage: string | undefined
  /** Every model the pods serve. */
  served: ModelRef[]
}

const VERSION = /^[1-9]\d{0,8}$/

export function parseModels (value: string): ModelRef[] {
  return value.split(',').map(s => s.trim()).filter(s => s !== '').map(s => {
    const [name, version] = s.split(':') as [string, string | undefined]
    return { name, version }
  })
}

function formatModels (refs: readonly ModelRef[]): string {
  return refs.map(r => r.version === undefined ? r.name : `${r.name}:${r.version}`).join(',')
}

/** `N` or `MODEL:N` against the models a pod serves: which model, which version. */
export function resolveCandidate (value: string, served: readonly ModelRef[], what: string): { model: string, version: string } {
  const m = /^(?:([^:,\s]+):)?([^:,\s]+)$/.exec(value.trim())
  if (m === null || !VERSION.test(m[2] as string)) throw new RolloutError(`${what}: '${value}' is neither a version (N) nor MODEL:N`)
  const version = m[2] as string
  if (m[1] !== undefined) {
    if (!served.some(r => r.name === m[1])) throw new RolloutError(`${what}: model '${m[1]}' is not served by the pods (${KEY.model}: ${formatModels(served) || 'none'})`)
    return { model: m[1], version }
  }
  if (served.length !== 1) throw new RolloutError(`${what}: the pods serve ${served.length === 0 ? 'no model' : `several models (${formatModels(served)})`}: name one as MODEL:${version}`)
  return { model: (served[0] as ModelRef).name, version }
}

/** The rollout the pod template declares (candidate undefined: none in progress). */
export function rolloutOf (d: DeploymentView): RolloutSpec {
  const name = d.metadata?.name ?? ''
  const a = d.spec?.template?.metadata?.annotations ?? {}
  const served = parseModels(a[KEY.model] ?? '')
  if (served.length === 0) throw new RolloutError(`deployment ${name}: its pod template has no ${KEY.model} annotation, so it runs no sidecar`)
  const raw = a[KEY.candidate]
  const canary = a[KEY.canary] === undefined ? undefined : Number(a[KEY.canary])
  if (raw === undefined) {
    const only = served.length === 1 ? served[0] as ModelRef : undefined
    return { model: only?.name ?? '', live: only?.version, candidate: undefined, canary, modelImage: a[KEY.modelImage], served }
  }
  const c = resolveCandidate(raw, served, `deployment ${name}: annotation ${KEY.candidate}`)
  return { model: c.model, live: served.find(r => r.name === c.model)?.version, candidate: c.version, canary, modelImage: a[KEY.modelImage], served }
}

/** How a rejected candidate is remembered: `ads:2@sha256:…` (the model image's digest, else its reference) or `ads:2@volume`. */
export function artifactOf (model: string, version: string, modelImage: string | undefined): string {
  const at = modelImage === undefined || modelImage === '' ? 'volume' : (/@(sha256:[0-9a-f]+)$/.exec(modelImage)?.[1] ?? modelImage)
  return `${model}:${version}@${at}`
}

function jsonList (d: DeploymentView, key: string): unknown[] {
  const raw = d.metadata?.annotations?.[key]
  if (raw === undefined || raw === '') return []
  try {
    const list: unknown = JSON.parse(raw)
    if (Array.isArray(list)) return list
  } catch {}
  throw new RolloutError(`deployment ${d.metadata?.name ?? ''}: annotation ${key} is not a JSON list; fix or remove it`)
}

export function rejectedOf (d: DeploymentView): string[] {
  return jsonList(d, KEY.rejected).filter((x): x is string => typeof x === 'string')
}

export interface StartRequest { candidate: string, canary: number, modelImage: string }

/** The patch that puts the candidate on the pod template; refuses a rejected candidate or a second rollout. */
export function startPatch (d: DeploymentView, req: StartRequest): object {
  const name = d.metadata?.name ?? ''
  const spec = rolloutOf(d)
  if (spec.candidate !== undefined) throw new RolloutError(`deployment ${name}: a rollout of ${spec.model}:${spec.candidate} is in progress; promote or abort it first`)
  const c = resolveCandidate(req.candidate, spec.served, 'flag --candidate')
  const live = spec.served.find(r => r.name === c.model)?.version
  if (live === c.version) throw new RolloutError(`flag --candidate: ${c.model}:${c.version} is already the live version`)
  const image = req.modelImage !== '' ? req.modelImage : spec.modelImage
  const artifact = artifactOf(c.model, c.version, image)
  if (rejectedOf(d).includes(artifact)) throw new RolloutError(`deployment ${name}: candidate ${artifact} was rejected before (annotation ${KEY.rejected}); build a new model image to try again`)
  const annotations: Record<string, string> = { [KEY.candidate]: spec.served.length === 1 ? c.version : `${c.model}:${c.version}` }
  if (req.canary > 0) annotations[KEY.canary] = String(req.canary)
  if (req.modelImage !== '') annotations[KEY.modelImage] = req.modelImage
  return { metadata: { resourceVersion: d.metadata?.resourceVersion }, spec: { template: { metadata: { annotations } } } }
}

export interface HistoryEntry {
  action: 'promote' | 'abort'
  model: string
  live: string | undefined
  candidate: string
  artifact: string
  at: string
  /** The pooled decision when it was acted on (its reason), or why it was forced or aborted. */
  decision: string
}

function inProgress (d: DeploymentView): RolloutSpec & { candidate: string } {
  const spec = rolloutOf(d)
  if (spec.candidate === undefined) throw new RolloutError(`deployment ${d.metadata?.name ?? ''}: no rollout in progress (its pod template has no ${KEY.candidate} annotation)`)
  return spec as RolloutSpec & { candidate: string }
}

function entry (action: HistoryEntry['action'], spec: RolloutSpec & { candidate: string }, decision: string, now: Date): HistoryEntry {
  return { action, model: spec.model, live: spec.live, candidate: spec.candidate, artifact: artifactOf(spec.model, spec.candidate, spec.modelImage), at: now.toISOString(), decision }
}

/** The candidate becomes the pinned live version; candidate and canary go; the history gets an entry. */
export function promotePatch (d: DeploymentView, decision: string, now: Date): object {
  const spec = inProgress(d)
  const served = spec.served.map(r => r.name === spec.model ? { name: r.name, version: spec.candidate } : r)
  const history = [...jsonList(d, KEY.history), entry('promote', spec, decision, now)]
  return {
    metadata: { resourceVersion: d.metadata?.resourceVersion, annotations: { [KEY.history]: JSON.stringify(history) } },
    spec: { template: { metadata: { annotations: { [KEY.model]: formatModels(served), [KEY.candidate]: null, [KEY.canary]: null } } } }
  }
}

/** Candidate and canary go, live stays; the candidate is recorded as rejected (and in the history). */
export function abortPatch (d: DeploymentView, decision: string, now: Date): object {
  const spec = inProgress(d)
  const e = entry('abort', spec, decision, now)
  const rejected = rejectedOf(d)
  if (!rejected.includes(e.artifact)) rejected.push(e.artifact)
  const history = [...jsonList(d, KEY.history), e]
  return {
    metadata: { resourceVersion: d.metadata?.resourceVersion, annotations: { [KEY.rejected]: JSON.stringify(rejected), [KEY.history]: JSON.stringify(history) } },
    spec: { template: { metadata: { annotations: { [KEY.candidate]: null, [KEY.canary]: null } } } }
  }
}
