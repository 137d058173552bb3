/**
 * Every error the sidecar reports to a client is created here, with a stable code,
 * an HTTP status and a message (the factory is common/errors.ts). The HTTP layer turns a
 * `SidecarError` into `{"error": "<message>", "code": "<code>"}` with its status; anything
 * else is a bug and becomes a 500 whose detail goes to the log only.
 *
 * Each code is documented in docs/api.md ("Error codes"); a test checks that.
 */

import { CodedError, errorDefiner } from '../../common/errors.js'

export class SidecarError extends CodedError {
  constructor (code: string, statusCode: number, message: string, headers: Record<string, string> = {}) {
    super(code, statusCode, message, headers)
    this.name = 'SidecarError'
  }
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`

const define = errorDefiner(SidecarError)

export const errors = {
  // 400: the request is wrong
  BAD_JSON: define('OS_ERR_BAD_JSON', 400, (detail: string) => `request body is not valid JSON: ${detail}`),
  BAD_REQUEST: define('OS_ERR_BAD_REQUEST', 400, (detail: string) => detail),
  BAD_INPUT: define('OS_ERR_BAD_INPUT', 400, (input: string, detail: string) => `input '${input}': ${detail}`),
  BAD_OUTPUT: define('OS_ERR_BAD_OUTPUT', 400, (output: string, detail: string) => `output '${output}': ${detail}`),
  BAD_BINARY: define('OS_ERR_BAD_BINARY', 400, (detail: string) => `binary tensor data: ${detail}`),
  BAD_VERSION: define('OS_ERR_BAD_VERSION', 400, (version: string) => `version '${version}' is not a positive integer`),
  JSON_LIMIT: define('OS_ERR_JSON_LIMIT', 400, (detail: string) => `request JSON is past a limit: ${detail}`),
  // Triton's system shared-memory extension (sidecar/shm/regions.ts); messages as Triton words them
  SHM_BAD_KEY: define('OS_ERR_SHM_BAD_KEY', 400, (key: string) => `shared memory key '${key}' must be one name in the pod's /dev/shm ("/name": no other '/', not '.' or '..', no NUL)`),
  SHM_OPEN_FAILED: define('OS_ERR_SHM_OPEN_FAILED', 400, (key: string, detail: string) => `unable to open shared memory region '${key}': ${detail}`),
  SHM_RANGE: define('OS_ERR_SHM_RANGE', 400, (what: string, detail: string) => `${what}: ${detail}`),
  SHM_REGION_NOT_FOUND: define('OS_ERR_SHM_REGION_NOT_FOUND', 400, (name: string) => `Unable to find system shared memory region: '${name}'`),
  SHM_TOO_MANY: define('OS_ERR_SHM_TOO_MANY', 400, (limit: number) => `${limit} shared memory regions are registered already (the limit); unregister one first`),
  // 404: nothing there
  NOT_FOUND: define('OS_ERR_NOT_FOUND', 404, (method: string, path: string) => `no route for ${method} ${path}`),
  MODEL_NOT_FOUND: define('OS_ERR_MODEL_NOT_FOUND', 404, (model: string) => `unknown model '${model}'`),
  VERSION_NOT_FOUND: define('OS_ERR_VERSION_NOT_FOUND', 404, (model: string, version: string) => `model '${model}' has no version '${version}'`),
  // 405, 409, 413
  SHM_REGION_EXISTS: define('OS_ERR_SHM_REGION_EXISTS', 409, (name: string) => `shared memory region '${name}' already in manager`),
  METHOD_NOT_ALLOWED: define('OS_ERR_METHOD_NOT_ALLOWED', 405, (method: string, path: string, _allow: string) => `${method} is not allowed on ${path}`,
    (_method: string, _path: string, allow: string) => ({ allow })),
  BODY_TOO_LARGE: define('OS_ERR_BODY_TOO_LARGE', 413, (limit: number) => `request body exceeds the limit of ${limit} bytes`),
  REQUEST_TOO_LARGE: define('OS_ERR_REQUEST_TOO_LARGE', 413, (bytes: number, limit: number) => `request needs about ${mib(bytes)} of memory to decode, more than the request memory limit of ${mib(limit)} (--request-memory)`),
  // 503: try again later
  MODEL_NOT_READY: define('OS_ERR_MODEL_NOT_READY', 503, (model: string, version: string, reason: string) => `model '${model}' version ${version} is not ready: ${reason}`),
  OVERLOADED: define('OS_ERR_OVERLOADED', 503, (model: string, size: number) => `model '${model}' queue is full (${size} requests); retry later`, () => ({ 'retry-after': '1' })),
  WORKER_UNAVAILABLE: define('OS_ERR_WORKER_UNAVAILABLE', 503, (model: string, detail: string) => `model '${model}' could not run: ${detail}; retry later`, () => ({ 'retry-after': '1' })),
  MEMORY_BUSY: define('OS_ERR_MEMORY_BUSY', 503, (used: number, limit: number) => `requests in flight hold ${mib(used)} of the ${mib(limit)} request memory; retry later`, () => ({ 'retry-after': '1' })),
  SHUTTING_DOWN: define('OS_ERR_SHUTTING_DOWN', 503, () => 'the sidecar is shutting down', () => ({ 'retry-after': '1', connection: 'close' })),
  DEADLINE_EXCEEDED: define('OS_ERR_DEADLINE_EXCEEDED', 504, (ms: number) => `request waited longer than its ${ms} ms deadline and was dropped before inference`),
  // 500: the model itself failed on valid input
  INFERENCE_FAILED: define('OS_ERR_INFERENCE_FAILED', 500, (model: string, detail: string) => `model '${model}' failed: ${detail}`),
  INTERNAL: define('OS_ERR_INTERNAL', 500, () => 'internal error (see the sidecar log)'),
  // the metrics port: the registry could not be read; the main thread has not stamped its heartbeat (probes fail)
  METRICS_FAILED: define('OS_ERR_METRICS_FAILED', 500, (detail: string) => `collecting metrics failed: ${detail}`),
  UNRESPONSIVE: define('OS_ERR_UNRESPONSIVE', 503, (ms: number, timeoutMs: number) => `the main thread has not answered for ${(ms / 1000).toFixed(1)} s (liveness timeout ${timeoutMs / 1000} s)`)
} as const

/** A request whose client disconnected before it ran; nobody is told. */
export class AbandonedError extends SidecarError {
  constructor () {
    super('OS_ERR_ABANDONED', 499, 'client closed the request before inference')
  }
}

export const MODEL_LOAD_CODES = ['OS_ERR_MODEL_CONFIG', 'OS_ERR_MODEL_LOAD', 'OS_ERR_MODEL_MISSING'] as const

/** Problems with the model repository; logged and shown by the repository index, never sent as a request error. */
export class ModelLoadError extends Error {
  readonly code: string
  constructor (code: typeof MODEL_LOAD_CODES[number], message: string) {
    super(message)
    this.name = 'ModelLoadError'
    this.code = code
  }
}

