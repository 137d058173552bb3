/**
 * The `onnx-sidecar.io/status` record: what one injection added, as JSON, so that the pod
 * is recognised as injected (no second sidecar, safe with `reinvocationPolicy: IfNeeded`)
 * and the injection can be undone exactly: every volume, mount, variable and annotation it
 * lists was added by the injector, nothing the pod had before.
 *
 * Still `version: 1`: later fields are additions a reader of an older record does without.
 * A record written before gRPC and sockets has no `grpcPort` and `env` as a plain list of
 * the containers that got `ONNX_SIDECAR_URL`; it reads as that, so a re-invocation gives
 * late containers only what the sidecar of that injection serves.
 */
import { APP_ENV_NAMES, URL_ENV } from './app-wiring.js'
import { isObject, type Json } from './merge.js'

export interface InjectionStatus {
  version: 1
  container: string
  models: string
  /** The `onnx-sidecar.io/model-image` reference the model volume mounts; absent without one. */
  modelImage?: string
  port: number
  /** Absent in records written before the sidecar served gRPC. */
  grpcPort?: number
  metricsPort: number
  native: boolean
  /** REST and gRPC also on Unix sockets in the socket volume. */
  socket: boolean
  /** Volumes the injector added to the pod. */
  volumes: string[]
  /** For each variable the injection gives app containers, the containers that got it (`[]`: every one had it already). */
  env: Record<string, string[]>
  /** App containers that got the socket directory mount. */
  mounts: string[]
  /** Pod annotations the injector added (besides this one). */
  annotations: string[]
}

export function formatStatus (s: InjectionStatus): string {
  // fixed key order, so the annotation is byte-for-byte stable
  return JSON.stringify({
    version: s.version,
    container: s.container,
    models: s.models,
    modelImage: s.modelImage, // dropped by JSON.stringify when undefined
    port: s.port,
    grpcPort: s.grpcPort, // dropped by JSON.stringify when undefined
    metricsPort: s.metricsPort,
    native: s.native,
    socket: s.socket,
    volumes: s.volumes,
    env: s.env,
    mounts: s.mounts,
    annotations: s.annotations
  })
}

export function readStatus (value: unknown): InjectionStatus | undefined {
  if (typeof value !== 'string') return undefined
  let s: unknown
  try {
    s = JSON.parse(value)
  } catch {
    return undefined
  }
  if (!isObject(s) || s.version !== 1 || typeof s.container !== 'string' || typeof s.port !== 'number' || typeof s.metricsPort !== 'number') return undefined
  const strings = (v: Json | undefined): string[] => Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
  const env: Record<string, string[]> = {}
  if (Array.isArray(s.env)) {
    env[URL_ENV] = strings(s.env) // a record written before gRPC
  } else if (isObject(s.env)) {
    for (const name of APP_ENV_NAMES) if (Object.hasOwn(s.env, name)) env[name] = strings(s.env[name])
  }
  const status: InjectionStatus = {
    version: 1,
    container: s.container,
    models: typeof s.models === 'string' ? s.models : '',
    port: s.port,
    metricsPort: s.metricsPort,
    native: s.native === true,
    socket: s.socket === true,
    volumes: strings(s.volumes),
    env,
    mounts: strings(s.mounts),
    annotations: strings(s.annotations)
  }
  if (typeof s.grpcPort === 'number') status.grpcPort = s.grpcPort
  if (typeof s.modelImage === 'string') status.modelImage = s.modelImage
  return status
}
