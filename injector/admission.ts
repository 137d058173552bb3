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
import type { InjectionConfig } from './injection-config.js'

export type AdmissionResult = 'injected' | 'skipped' | 'denied' | 'error'

export interface AdmissionOutcome {
  /** The AdmissionReview to send back (HTTP 200). */
  review: Record<string, unknown>
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

const API_VERSIONS = new Set(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'])

/** Throws `BAD_REVIEW` (HTTP 400) only when there is no request `uid` to answer to. */
export function admit (body: unknown, config: InjectionConfig): AdmissionOutcome {
  if (!isObject(body)) throw errors.BAD_REVIEW('the body is not a JSON object')
  if (body.kind !== 'AdmissionReview' || typeof body.apiVersion !== 'string' || !API_VERSIONS.has(body.apiVersion)) {
    throw errors.BAD_REVIEW(`expected kind AdmissionReview and apiVersion admission.k8s.io/v1, got ${JSON.stringify(body.kind)} ${JSON.stringify(body.apiVersion)}`)
  }
  const request = body.request
  if (!isObject(request) || typeof request.uid !== 'string' || request.uid === '') throw errors.BAD_REVIEW('request.uid is missing')
  const uid = request.uid
  const object = request.object
  const meta = isObject(object) && isObject(object.metadata) ? object.metadata : {}
  const metaNamespace = typeof meta.namespace === 'string' ? meta.namespace : ''
  const namespace = typeof request.namespace === 'string' && request.namespace !== '' ? request.namespace : metaNamespace
  const pod = typeof meta.name === 'string' && meta.name !== '' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : typeof request.name === 'string' ? request.name : ''
  const answer = (response: Record<string, unknown>): Record<string, unknown> => ({
    apiVersion: body.apiVersion,
    kind: 'AdmissionReview',
    response: { uid, ...response }
  })
  const base = { uid, namespace, pod }

  const kind = isObject(request.kind) ? request.kind : {}
  const isPod = (kind.group ?? '') === '' && kind.kind === 'Pod' && (request.subResource ?? '') === ''
  if (!isPod || (request.operation !== undefined && request.operation !== 'CREATE') || !isObject(object)) {
    return { ...base, review: answer({ allowed: true }), result: 'skipped', reason: 'not a pod creation', warnings: [] }
  }

  try {
    const result = inject(object, config, namespace)
    if (result.outcome === 'skipped') return { ...base, review: answer({ allowed: true }), result: 'skipped', reason: result.reason ?? '', warnings: [] }
    const patch = jsonpatch.compare(object, result.pod as object)
    const response: Record<string, unknown> = { allowed: true }
    if (patch.length > 0) {
      response.patchType = 'JSONPatch'
      response.patch = Buffer.from(JSON.stringify(patch)).toString('base64')
    }
    if (result.warnings.length > 0) response.warnings = result.warnings
    return { ...base, review: answer(response), result: patch.length > 0 ? 'injected' : 'skipped', reason: result.outcome, warnings: result.warnings }
  } catch (err) {
    const known = err instanceof InjectorError
    const e = known ? err : errors.INTERNAL()
    return {
      ...base,
      review: answer({ allowed: false, status: { code: e.statusCode, message: e.message, reason: known ? 'BadRequest' : 'InternalError' } }),
      result: known ? 'denied' : 'error',
      reason: e.message,
      warnings: [],
      ...(known ? {} : { error: err })
    }
  }
}
