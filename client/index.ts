/**
 * `onnx-sidecar/client`: a small typed client for applications next to the sidecar.
 * Plain HTTP with undici (keep-alive connection pool; a Unix domain socket when
 * `ONNX_SIDECAR_SOCKET` or `socketPath` names one that exists) — no ML code in the app.
 *
 *   import { SidecarClient } from 'onnx-sidecar/client'
 *   const sidecar = new SidecarClient()            // ONNX_SIDECAR_URL, else http://127.0.0.1:8500
 *   const res = await sidecar.infer('iris', [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }])
 *   res.outputs.find(o => o.name === 'label')?.data   // [0]
 */
import { existsSync } from 'node:fs'
import { Pool } from 'undici'
import { processEnv } from '../common/config.js'

export type Datatype = 'BOOL' | 'UINT8' | 'UINT16' | 'UINT32' | 'UINT64' | 'INT8' | 'INT16' | 'INT32' | 'INT64' | 'FP16' | 'FP32' | 'FP64' | 'BYTES'

export interface InferInput {
  name: string
  datatype: Datatype
  shape: number[]
  /** Flat or nested, row-major. INT64/UINT64 beyond 2^53: decimal strings. */
  data: unknown[]
  parameters?: Record<string, unknown>
}

export interface RequestedOutput {
  name: string
  parameters?: { classification?: number, binary_data?: boolean, [k: string]: unknown }
}

export interface InferOutput {
  name: string
  datatype: Datatype
  shape: number[]
  data: unknown[]
}

export interface InferResponse {
  model_name: string
  model_version: string
  id?: string
  parameters?: Record<string, unknown>
  outputs: InferOutput[]
}

export interface TensorMetadata { name: string, datatype: Datatype, shape: number[] }
export interface ModelMetadata { name: string, versions: string[], platform: string, inputs: TensorMetadata[], outputs: TensorMetadata[] }
export interface RepositoryEntry { name: string, version: string, state: string, reason: string }

export interface SidecarClientOptions {
  /** Base URL; default `ONNX_SIDECAR_URL`, else http://127.0.0.1:8500. */
  url?: string
  /** Unix domain socket; default `ONNX_SIDECAR_SOCKET` when that file exists. */
  socketPath?: string
  /** Keep-alive connections in the pool (default 16). */
  connections?: number
  /** Per-request timeout in ms for headers and body (default 30 seconds). */
  timeoutMs?: number
}

const DEFAULT_URL = 'http://127.0.0.1:8500'
const DEFAULT_CONNECTIONS = 16
const DEFAULT_TIMEOUT_MS = 30_000 // 30 seconds for headers and for the body
const KEEP_ALIVE_TIMEOUT_MS = 60_000 // 60 seconds: shorter than the sidecar's 65, so the client closes an idle connection first

export class SidecarRequestError extends Error {
  readonly status: number
  /**
   * The sidecar's stable error code (`OS_ERR_OVERLOADED`, `OS_ERR_MODEL_NOT_READY`, …; the
   * table in docs/api.md); undefined when the answer carried none.
   */
  readonly code: string | undefined
  constructor (status: number, message: string, code?: string) {
    super(message)
    this.name = 'SidecarRequestError'
    this.status = status
    this.code = code
  }
}

export class SidecarClient {
  readonly url: string
  readonly socketPath: string | undefined
  #pool: Pool
  #timeout: number

  constructor (opts: SidecarClientOptions = {}) {
    const env = processEnv()
    this.url = opts.url ?? env.ONNX_SIDECAR_URL ?? DEFAULT_URL
    const socket = opts.socketPath ?? env.ONNX_SIDECAR_SOCKET
    this.socketPath = socket !== undefined && socket !== '' && existsSync(socket) ? socket : undefined
    this.#timeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.#pool = new Pool(new URL(this.url).origin, {
      connections: opts.connections ?? DEFAULT_CONNECTIONS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      ...(this.socketPath !== undefined ? { socketPath: this.socketPath } : {})
    })
  }

  async #call<T> (method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number, json: T }> {
    const res = await this.#pool.request({
      method,
      path,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: this.#timeout,
      bodyTimeout: this.#timeout,
      signal
    })
    const text = await res.body.text()
    let json: unknown
    try {
      json = text === '' ? {} : JSON.parse(text)
    } catch {
      throw new SidecarRequestError(res.statusCode, `sidecar answered ${res.statusCode} with a body that is not JSON`)
    }
    return { status: res.statusCode, json: json as T }
  }

  async #ok<T> (method: 'GET' | 'POST', path: string, body?: unknown, headers?: Record<string, string>, signal?: AbortSignal): Promise<T> {
    const { status, json } = await this.#call<T & { error?: string, code?: string }>(method, path, body, headers, signal)
    if (status >= 400) throw new SidecarRequestError(status, json.error ?? `sidecar answered ${status}`, typeof json.code === 'string' ? json.code : undefined)
    return json
  }

  static path (model: string, version?: string | number): string {
    const base = `/v2/models/${encodeURIComponent(model)}`
    return version === undefined ? base : `${base}/versions/${encodeURIComponent(String(version))}`
  }

  async infer (model: string, inputs: InferInput[], opts: { version?: string | number, outputs?: RequestedOutput[], id?: string, parameters?: Record<string, unknown>, headers?: Record<string, string>, signal?: AbortSignal } = {}): Promise<InferResponse> {
    const body: Record<string, unknown> = { inputs }
    if (opts.id !== undefined) body.id = opts.id
    if (opts.outputs !== undefined) body.outputs = opts.outputs
    if (opts.parameters !== undefined) body.parameters = opts.parameters
    return await this.#ok<InferResponse>('POST', `${SidecarClient.path(model, opts.version)}/infer`, body, opts.headers, opts.signal)
  }

  async live (): Promise<boolean> {
    return (await this.#call('GET', '/v2/health/live')).status === 200
  }

  async ready (): Promise<boolean> {
    return (await this.#call('GET', '/v2/health/ready')).status === 200
  }

  async modelReady (model: string, version?: string | number): Promise<boolean> {
    const { status, json } = await this.#call<{ code?: string }>('GET', `${SidecarClient.path(model, version)}/ready`)
    if (status === 404) throw new SidecarRequestError(404, `unknown model '${model}'`, typeof json.code === 'string' ? json.code : undefined)
    return status === 200
  }

  async modelMetadata (model: string, version?: string | number): Promise<ModelMetadata> {
    return await this.#ok<ModelMetadata>('GET', SidecarClient.path(model, version))
  }

  async repositoryIndex (): Promise<RepositoryEntry[]> {
    return await this.#ok<RepositoryEntry[]>('POST', '/v2/repository/index', {})
  }

  async close (): Promise<void> {
    await this.#pool.close()
  }
}
