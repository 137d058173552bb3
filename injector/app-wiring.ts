/**
 * What app containers get so they can find the sidecar: environment variables naming its
 * addresses and, with sockets on, a read-only mount of the socket directory. Used on first
 * injection and again on re-invocation, for app containers another webhook added since.
 *
 * Only `spec.containers` are app containers. Init containers get nothing: regular ones
 * have finished before the native sidecar (appended after them) starts, and other native
 * sidecars start before it too, so the sidecar is never there for them when they start.
 * `onnx-sidecar.io/containers` narrows the app containers to those it names.
 */
import { GRPC_SOCKET_NAME, HTTP_SOCKET_NAME } from '../common/sockets.js'
import { ANNOTATIONS } from './annotations.js'
import { errors } from './errors.js'
import { isObject, type JsonObject } from './merge.js'

export const URL_ENV = 'ONNX_SIDECAR_URL'
export const GRPC_ADDRESS_ENV = 'ONNX_SIDECAR_GRPC_ADDRESS'
export const SOCKET_ENV = 'ONNX_SIDECAR_SOCKET'
export const GRPC_SOCKET_ENV = 'ONNX_SIDECAR_GRPC_SOCKET'
/** Every variable the injector may add, in the order it adds them. */
export const APP_ENV_NAMES = [URL_ENV, GRPC_ADDRESS_ENV, SOCKET_ENV, GRPC_SOCKET_ENV] as const

export const SOCKET_VOLUME = 'onnx-sidecar-socket'
export const SOCKET_DIR = '/var/run/onnx-sidecar'
/** The sidecar serves REST on `http.sock` and gRPC on `grpc.sock` there (`serve --socket-dir`). */
const HTTP_SOCKET = `${SOCKET_DIR}/${HTTP_SOCKET_NAME}`
const GRPC_SOCKET = `${SOCKET_DIR}/${GRPC_SOCKET_NAME}`

export interface Wiring {
  port: number
  /** Absent for pods injected before the sidecar served gRPC: they get no gRPC variable. */
  grpcPort?: number
  socket: boolean
  /** Whether `socket` came from the pod's annotation (else the injection config), for messages. */
  socketAnnotated: boolean
  /** The app containers to wire (`onnx-sidecar.io/containers`); every one when absent. */
  containers?: readonly string[] | undefined
}

export interface Wired {
  /** For each variable the wiring provides, the app containers that got it (`[]`: all had it). */
  env: Record<string, string[]>
  /** App containers that got the socket directory mount. */
  mounts: string[]
}

/** The variables, in order; they are prepended so later variables can use `$(ONNX_SIDECAR_URL)` and the like. */
function appEnv (w: Wiring): Array<[string, string]> {
  const vars: Array<[string, string]> = [[URL_ENV, `http://127.0.0.1:${w.port}`]]
  if (w.grpcPort !== undefined) vars.push([GRPC_ADDRESS_ENV, `127.0.0.1:${w.grpcPort}`])
  if (w.socket) vars.push([SOCKET_ENV, HTTP_SOCKET], [GRPC_SOCKET_ENV, GRPC_SOCKET])
  return vars
}

/**
 * Gives every app container (all of `spec.containers` but the sidecar; only those named in
 * `w.containers` when it is given) what it lacks. A
 * container it changes is replaced by a changed copy, so `spec.containers` must be the
 * caller's own list.
 * An existing variable of the same name is left alone. A container that already mounts
 * another volume at the socket directory makes this throw: Kubernetes refuses two mounts
 * at one path, and silently skipping it would leave the app without the socket it asked for.
 */
export function wireApps (spec: JsonObject, sidecar: string, w: Wiring): Wired {
  const vars = appEnv(w)
  const env: Record<string, string[]> = Object.fromEntries(vars.map(([name]) => [name, []]))
  const mounts: string[] = []
  const containers = Array.isArray(spec.containers) ? spec.containers : []
  for (const [i, c] of containers.entries()) {
    if (!isObject(c) || c.name === sidecar) continue
    const name = String(c.name)
    if (w.containers !== undefined && !w.containers.includes(name)) continue // not chosen: a log shipper, say
    const existing = Array.isArray(c.env) ? c.env : []
    const missing = vars.filter(([n]) => !existing.some(e => isObject(e) && e.name === n))
    const mount = w.socket ? socketMount(c, name, w.socketAnnotated) : undefined
    if (missing.length === 0 && mount === undefined) continue
    // a changed copy replaces the container in the list: the container object may be the caller's input
    const changed: JsonObject = { ...c }
    if (missing.length > 0) changed.env = [...missing.map(([n, value]) => ({ name: n, value })), ...existing]
    for (const [n] of missing) env[n]?.push(name)
    if (mount !== undefined) {
      changed.volumeMounts = [...(Array.isArray(c.volumeMounts) ? c.volumeMounts : []), mount]
      mounts.push(name)
    }
    containers[i] = changed
  }
  return { env, mounts }
}

/** The read-only socket directory mount the container still needs; undefined when it has it already. */
function socketMount (c: JsonObject, name: string, annotated: boolean): JsonObject | undefined {
  const list = Array.isArray(c.volumeMounts) ? c.volumeMounts : []
  const there = list.find(m => isObject(m) && typeof m.mountPath === 'string' && m.mountPath.replace(/\/+$/, '') === SOCKET_DIR)
  if (isObject(there)) {
    if (there.name === SOCKET_VOLUME) return undefined
    const hint = annotated ? '' : ' ("true" is the injection config\'s default)'
    throw errors.INVALID_ANNOTATION(ANNOTATIONS.socket.key, 'true',
      `needs ${SOCKET_DIR} in container '${name}' for the sidecar's sockets, but it mounts volume '${String(there.name)}' there${hint}; move that mount or set ${ANNOTATIONS.socket.key}: "false"`)
  }
  // read-only: connecting to a socket needs write permission on the socket file, not a writable mount
  return { name: SOCKET_VOLUME, mountPath: SOCKET_DIR, readOnly: true }
}
