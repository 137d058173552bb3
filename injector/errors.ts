/**
 * Every error the injector reports is created here, with a stable code, an HTTP status
 * and a message. Annotation problems become `allowed: false` admission responses whose
 * message is the error's message (kubectl prints it after "denied the request:"); HTTP
 * problems with the AdmissionReview itself become plain HTTP errors
 * `{"error": "...", "code": "OS_ERR_INJ_..."}`. The factory is common/errors.ts.
 *
 * Each code is documented in docs/injection.md ("Error codes"); a test checks that.
 */

import { CodedError, errorDefiner } from '../common/errors.js'

export class InjectorError extends CodedError {
  constructor (code: string, statusCode: number, message: string, headers: Record<string, string> = {}) {
    super(code, statusCode, message, headers)
    this.name = 'InjectorError'
  }
}

const define = errorDefiner(InjectorError)

/** Seconds a client refused for lack of memory is told to wait (`Retry-After`). */
const RETRY_AFTER_SECONDS = 1

export const errors = {
  // The pod asks for something the injector cannot do: the admission is denied.
  INVALID_ANNOTATION: define('OS_ERR_INJ_INVALID_ANNOTATION', 400,
    (key: string, value: string, detail: string) => `annotation ${key}: ${JSON.stringify(value)} ${detail}`),
  PORT_CLASH: define('OS_ERR_INJ_PORT_CLASH', 400,
    (key: string, port: number, detail: string) => `annotation ${key}: port ${port} ${detail}`),
  UNKNOWN_VOLUME: define('OS_ERR_INJ_UNKNOWN_VOLUME', 400,
    (key: string, value: string, volumes: string[]) => `annotation ${key}: ${JSON.stringify(value)} is not a volume of this pod (volumes: ${volumes.length === 0 ? 'none' : volumes.join(', ')})`),
  INVALID_POD: define('OS_ERR_INJ_INVALID_POD', 400, (detail: string) => `cannot inject this pod: ${detail}`),
  // The pod's own `onnx-sidecar` container (overrides) sets resources, args or env the sidecar would not run with.
  INVALID_OVERRIDE: define('OS_ERR_INJ_INVALID_OVERRIDE', 400,
    (field: string, value: string, detail: string) => `container onnx-sidecar (overrides): ${field}: ${JSON.stringify(value)} ${detail}`),
  // Two annotations that each choose the same thing (the model volume: `model-image` and `volume`).
  ANNOTATION_CONFLICT: define('OS_ERR_INJ_ANNOTATION_CONFLICT', 400,
    (key: string, value: string, other: string, otherValue: string, detail: string) => `annotation ${key}: ${JSON.stringify(value)} cannot be combined with ${other}: ${JSON.stringify(otherValue)}: ${detail}`),
  // The API server (`--kube-version`) is older than a feature the pod asks for.
  KUBE_TOO_OLD: define('OS_ERR_INJ_KUBE_TOO_OLD', 400,
    (key: string, value: string, needed: string, feature: string, found: string, remedy: string) => `annotation ${key}: ${JSON.stringify(value)} needs Kubernetes ${needed} or later for ${feature}, but the API server is ${found} (the injector's --kube-version); ${remedy}`),
  // Offline injection: the input is not a manifest.
  INVALID_MANIFEST: define('OS_ERR_INJ_INVALID_MANIFEST', 400, (where: string, detail: string) => `${where}: ${detail}`),
  // The injection config file (the chart's ConfigMap) is wrong; the webhook keeps its previous config.
  INVALID_CONFIG: define('OS_ERR_INJ_INVALID_CONFIG', 500, (file: string, detail: string) => `injection config ${file}: ${detail}`),
  // HTTP problems with the request that carries the AdmissionReview.
  BAD_REVIEW: define('OS_ERR_INJ_BAD_REVIEW', 400, (detail: string) => `not an AdmissionReview: ${detail}`),
  NOT_FOUND: define('OS_ERR_INJ_NOT_FOUND', 404, (method: string, path: string) => `no route for ${method} ${path}`),
  METHOD_NOT_ALLOWED: define('OS_ERR_INJ_METHOD_NOT_ALLOWED', 405, (method: string, path: string) => `${method} is not allowed on ${path}`),
  BODY_TOO_LARGE: define('OS_ERR_INJ_BODY_TOO_LARGE', 413, (limit: number) => `request body exceeds the limit of ${limit} bytes`),
  UNSUPPORTED_MEDIA_TYPE: define('OS_ERR_INJ_UNSUPPORTED_MEDIA_TYPE', 415, (type: string) => `content-type '${type}' is not supported (use application/json)`),
  // A review whose parse would cost more than the whole memory budget (`--request-memory`): never fits.
  REVIEW_TOO_COSTLY: define('OS_ERR_INJ_REVIEW_TOO_COSTLY', 413, (needed: number, capacity: number) => `this review would need about ${Math.ceil(needed / 1024)} KiB of memory to parse, more than the ${Math.ceil(capacity / 1024)} KiB request memory`),
  // Reviews in flight already hold the memory budget (`--request-memory`): HTTP 503 with Retry-After.
  OVERLOADED: define('OS_ERR_INJ_OVERLOADED', 503, (needed: number, capacity: number) => `too many reviews in flight: this one needs about ${Math.ceil(needed / 1024)} KiB of the ${Math.ceil(capacity / 1024)} KiB request memory; retry shortly`,
    () => ({ 'retry-after': String(RETRY_AFTER_SECONDS) })),
  // A bug: the admission is denied (the chart's failurePolicy is Fail anyway) and the detail goes to the log.
  INTERNAL: define('OS_ERR_INJ_INTERNAL', 500, () => 'internal error in the onnx-sidecar injector (see its log)')
} as const

/**
 * One denial for every problem found in a pod, so a user fixes them all in one round: the
 * messages joined with '; ', then `notes` (unknown annotations, with suggestions), under the
 * first problem's code and status. `problems` is not empty.
 */
export function allOf (problems: readonly InjectorError[], notes: readonly string[] = []): InjectorError {
  const first = problems[0]!
  if (problems.length === 1 && notes.length === 0) return first
  return new InjectorError(first.code, first.statusCode, [...problems.map(p => p.message), ...notes].join('; '))
}

/** Every code, for the documentation test. */
export const ERROR_CODES: readonly string[] = Object.values(errors).map(e => e.code)
