/**
 * The AdmissionReview side of the webhook, pure: a decoded request body in, the
 * AdmissionReview to answer with out. The patch is the RFC 6902 difference between the
 * pod before and after `inject` (fast-json-patch's `compare`), so escaping and missing
 * arrays are handled in one place. Never throws: anything odd becomes either
 * `allowed: true` without a patch (not a pod we handle) or `allowed: false` with a message.
 */
import jsonpatch from 'fast-json-patch'
import { errors, InjectorError } from './errors.js'
import { inject } from './inject-pod.js'
import { isObject } from './merge.js'
import { checkPodSize } from './pod-limits.js'
import { ANNOTATIONS } from './annotations.js'
import type { InjectionConfig } from './injection-config.js'
import type { ClusterInfo } from './kube-version.js'

export type AdmissionResult = 'injected' | 'skipped' | 'denied' | 'error'

export interface AdmissionOutcome {
  /** The AdmissionReview to send back (HTTP 200). */
  review: Record<string, unknown>
  /** `review` as JSON, what the server writes (built without re-escaping the base64 patch). */
  json: string
  result: AdmissionResult
  /** For the log line: fixed field names, values from the request. */
  uid: string
  namespace: string
  pod: string
  reason?: string
  warnings: string[]
  /** An unexpected exception (a bug), for the log. */
  error?: unknown
}

interface Request { apiVersion: string, uid: string, namespace: string, pod: string }

const API_VERSIONS = new Set(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'])

/**
 * Throws `BAD_REVIEW` (HTTP 400) only when there is no request `uid` to answer to.
 * `cluster`: what the webhook was told about the API server (`--kube-version`).
 */
export function admit (body: unknown, config: InjectionConfig, cluster: ClusterInfo = {}): AdmissionOutcome {
  if (!isObject(body)) throw errors.BAD_REVIEW('the body is not a JSON object')
  if (body.kind !== 'AdmissionReview' || typeof body.apiVersion !== 'string' || !API_VERSIONS.has(body.apiVersion)) {
    throw errors.BAD_REVIEW(`expected kind AdmissionReview and apiVersion admission.k8s.io/v1, got ${JSON.stringify(body.kind)} ${JSON.stringify(body.apiVersion)}`)
  }
  const request = body.request
  if (!isObject(request) || typeof request.uid !== 'string' || request.uid === '') throw errors.BAD_REVIEW('request.uid is missing')
  const object = request.object
  const meta = isObject(object) && isObject(object.metadata) ? object.metadata : {}
  const metaNamespace = typeof meta.namespace === 'string' ? meta.namespace : ''
  const req: Request = {
    apiVersion: body.apiVersion,
    uid: request.uid,
    namespace: typeof request.namespace === 'string' && request.namespace !== '' ? request.namespace : metaNamespace,
    pod: typeof meta.name === 'string' && meta.name !== '' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : typeof request.name === 'string' ? request.name : ''
  }

  const kind = isObject(request.kind) ? request.kind : {}
  const isPod = (kind.group ?? '') === '' && kind.kind === 'Pod' && (request.subResource ?? '') === ''
  if (!isPod || (request.operation !== undefined && request.operation !== 'CREATE') || !isObject(object)) {
    return allowed(req, 'skipped', 'not a pod creation', undefined, [])
  }

  try {
    // a pod the injector would work on, before any work that grows with its lists
    if (isObject(meta.annotations) && Object.hasOwn(meta.annotations, ANNOTATIONS.model.key)) checkPodSize(object)
    const result = inject(object, config, req.namespace, cluster)
    if (result.outcome === 'skipped') return allowed(req, 'skipped', result.reason ?? '', undefined, result.warnings)
    // `compare` copies every value it adds (JSON round trip); the ops are only serialised here.
    const ops = jsonpatch.compare(object, result.pod as object)
    const patch = ops.length === 0 ? undefined : Buffer.from(JSON.stringify(ops)).toString('base64')
    return allowed(req, patch === undefined ? 'skipped' : 'injected', result.outcome, patch, result.warnings)
  } catch (err) {
    const known = err instanceof InjectorError
    const e = known ? err : errors.INTERNAL()
    const response = { uid: req.uid, allowed: false, status: { code: e.statusCode, message: e.message, reason: known ? 'BadRequest' : 'InternalError' } }
    const review = { apiVersion: req.apiVersion, kind: 'AdmissionReview', response }
    return {
      uid: req.uid,
      namespace: req.namespace,
      pod: req.pod,
      review,
      json: JSON.stringify(review),
      result: known ? 'denied' : 'error',
      reason: e.message,
      warnings: [],
      ...(known ? {} : { error: err })
    }
  }
}

/**
 * An `allowed: true` answer, with the patch (base64) when there is one. The JSON is written
 * out here rather than by `JSON.stringify(review)`: the patch, a few kB of base64, needs no
 * escaping, and stringify would scan it character by character. Key order is the review's.
 */
function allowed (req: Request, result: AdmissionResult, reason: string, patch: string | undefined, warnings: string[]): AdmissionOutcome {
  const response: Record<string, unknown> = { uid: req.uid, allowed: true }
  let json = `{"apiVersion":${JSON.stringify(req.apiVersion)},"kind":"AdmissionReview","response":{"uid":${JSON.stringify(req.uid)},"allowed":true`
  if (patch !== undefined) {
    response.patchType = 'JSONPatch'
    response.patch = patch
    json += `,"patchType":"JSONPatch","patch":"${patch}"`
  }
  if (warnings.length > 0) {
    response.warnings = warnings
    json += `,"warnings":${JSON.stringify(warnings)}`
  }
  json += '}}'
  return {
    uid: req.uid,
    namespace: req.namespace,
    pod: req.pod,
    review: { apiVersion: req.apiVersion, kind: 'AdmissionReview', response },
    json,
    result,
    reason,
    warnings
  }
}
