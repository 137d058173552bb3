/**
 * What docs/injection.md says an injected pod looks like, and a pod the injector left alone,
 * as assertions on the pod object the API server stored.
 */
import { expect } from './lib.js'
import type { Json } from './context.js'

export const SIDECAR = 'onnx-sidecar'

export function sidecarOf (p: Json): { container: Json, native: boolean } | undefined {
  const init = (p.spec.initContainers ?? []).find((c: Json) => c.name === SIDECAR)
  if (init !== undefined) return { container: init, native: true }
  const reg = (p.spec.containers ?? []).find((c: Json) => c.name === SIDECAR)
  return reg === undefined ? undefined : { container: reg, native: false }
}

export const SOCKET_DIR = '/var/run/onnx-sidecar'
export const SOCKET_VOLUME = 'onnx-sidecar-socket'

export function envOf (c: Json, name: string): string | undefined {
  return (c.env ?? []).find((e: Json) => e.name === name)?.value
}

/** `--flag value` or `--flag=value` in a container's command and args. */
export function argOf (c: Json, flag: string): string | undefined {
  const args: string[] = [...(c.command ?? []), ...(c.args ?? [])].map(String)
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) return args[i + 1]
    if (args[i]?.startsWith(`${flag}=`) === true) return args[i]?.slice(flag.length + 1)
  }
  return undefined
}

/** Everything docs/injection.md says an injected pod has; returns a one-line summary.
 * `socket`: onnx-sidecar.io/socket is on (the socket volume, mounts, --socket-dir and
 * variables must be there) or off (none of them may be). */
export function assertInjected (p: Json, want: { native: boolean, models: string, socket?: boolean }): string {
  const name = `${String(p.metadata.namespace)}/${String(p.metadata.name)}`
  const sc = sidecarOf(p)
  expect(sc !== undefined, `${name}: no ${SIDECAR} container was added`)
  const count = [...(p.spec.initContainers ?? []), ...p.spec.containers].filter((c: Json) => c.name === SIDECAR).length
  expect(count === 1, `${name}: ${count} ${SIDECAR} containers (injected more than once?)`)
  expect(sc.native === want.native, `${name}: sidecar is ${sc.native ? 'a native sidecar' : 'a regular container'}, wanted ${want.native ? 'native' : 'regular'}`)
  if (want.native) {
    expect(sc.container.restartPolicy === 'Always', `${name}: native sidecar without restartPolicy Always`)
    expect(sc.container.startupProbe?.httpGet !== undefined, `${name}: native sidecar without an HTTP startupProbe`)
  }
  const status = JSON.parse(p.metadata.annotations?.['onnx-sidecar.io/status'] ?? 'null')
  expect(status !== null, `${name}: no onnx-sidecar.io/status annotation`)
  const ann = p.metadata.annotations
  expect(ann['prometheus.io/scrape'] === 'true' && ann['prometheus.io/port'] !== undefined && ann['prometheus.io/path'] !== undefined, `${name}: prometheus.io/* annotations missing`)
  const args = [...(sc.container.command ?? []), ...(sc.container.args ?? [])].join(' ')
  expect(args.includes(want.models), `${name}: sidecar args do not name model ${want.models}: ${args}`)
  const mount = (sc.container.volumeMounts ?? []).find((m: Json) => m.mountPath === '/models')
  expect(mount?.readOnly === true, `${name}: model volume not mounted read-only at /models`)
  expect((p.spec.volumes ?? []).some((v: Json) => v.name === mount.name), `${name}: volume ${String(mount.name)} not in the pod`)
  const sec = sc.container.securityContext ?? {}
  expect(sec.runAsNonRoot === true && sec.readOnlyRootFilesystem === true && sec.allowPrivilegeEscalation === false &&
    (sec.capabilities?.drop ?? []).includes('ALL') && sec.seccompProfile?.type === 'RuntimeDefault', `${name}: sidecar security context is not hardened: ${JSON.stringify(sec)}`)
  const grpcPort = argOf(sc.container, '--grpc-port')
  expect(/^\d+$/.test(grpcPort ?? ''), `${name}: sidecar args have no --grpc-port: ${args}`)
  const socket = want.socket === true
  const socketVolume = (p.spec.volumes ?? []).find((v: Json) => v.name === SOCKET_VOLUME)
  const sidecarSocketMount = (sc.container.volumeMounts ?? []).find((m: Json) => m.mountPath === SOCKET_DIR)
  if (socket) {
    expect(socketVolume?.emptyDir?.medium === 'Memory', `${name}: no in-memory emptyDir volume ${SOCKET_VOLUME}: ${JSON.stringify(socketVolume)}`)
    expect(sidecarSocketMount?.name === SOCKET_VOLUME && sidecarSocketMount.readOnly !== true, `${name}: sidecar does not mount ${SOCKET_VOLUME} read-write at ${SOCKET_DIR}: ${JSON.stringify(sidecarSocketMount)}`)
    expect(argOf(sc.container, '--socket-dir') === SOCKET_DIR, `${name}: sidecar args have no --socket-dir ${SOCKET_DIR}: ${args}`)
    expect(status.socket === true && (status.volumes ?? []).includes(SOCKET_VOLUME), `${name}: onnx-sidecar.io/status does not record the socket: ${JSON.stringify(status)}`)
  } else {
    expect(socketVolume === undefined && sidecarSocketMount === undefined && argOf(sc.container, '--socket-dir') === undefined, `${name}: sockets are on but the pod did not ask for them`)
  }
  for (const c of p.spec.containers) {
    if (c.name === SIDECAR) continue
    const cname = `${name}: container ${String(c.name)}`
    expect(/^http:\/\/127\.0\.0\.1:\d+$/.test(envOf(c, 'ONNX_SIDECAR_URL') ?? ''), `${cname} has no ONNX_SIDECAR_URL`)
    expect(envOf(c, 'ONNX_SIDECAR_GRPC_ADDRESS') === `127.0.0.1:${String(grpcPort)}`, `${cname}: ONNX_SIDECAR_GRPC_ADDRESS is ${String(envOf(c, 'ONNX_SIDECAR_GRPC_ADDRESS'))}, the sidecar has --grpc-port ${String(grpcPort)}`)
    const mount = (c.volumeMounts ?? []).find((m: Json) => m.mountPath === SOCKET_DIR)
    if (socket) {
      expect(envOf(c, 'ONNX_SIDECAR_SOCKET') === `${SOCKET_DIR}/http.sock`, `${cname}: ONNX_SIDECAR_SOCKET is ${String(envOf(c, 'ONNX_SIDECAR_SOCKET'))}`)
      expect(envOf(c, 'ONNX_SIDECAR_GRPC_SOCKET') === `${SOCKET_DIR}/grpc.sock`, `${cname}: ONNX_SIDECAR_GRPC_SOCKET is ${String(envOf(c, 'ONNX_SIDECAR_GRPC_SOCKET'))}`)
      expect(mount?.name === SOCKET_VOLUME && mount.readOnly === true, `${cname} does not mount ${SOCKET_VOLUME} read-only at ${SOCKET_DIR}: ${JSON.stringify(mount)}`)
      expect((status.mounts ?? []).includes(c.name), `${cname} is not in the status annotation's mounts: ${JSON.stringify(status.mounts)}`)
    } else {
      expect(envOf(c, 'ONNX_SIDECAR_SOCKET') === undefined && envOf(c, 'ONNX_SIDECAR_GRPC_SOCKET') === undefined && mount === undefined, `${cname} got socket variables or the socket mount`)
    }
  }
  const app = p.spec.containers.find((c: Json) => c.name !== SIDECAR)
  const vars = ['ONNX_SIDECAR_URL', 'ONNX_SIDECAR_GRPC_ADDRESS', 'ONNX_SIDECAR_SOCKET', 'ONNX_SIDECAR_GRPC_SOCKET']
    .filter(v => envOf(app, v) !== undefined).map(v => `${v}=${String(envOf(app, v))}`)
  return `${name}: ${want.native ? 'native sidecar' : 'sidecar container'} ${String(sc.container.image)}${socket ? ` --socket-dir ${SOCKET_DIR}` : ''}; ${String(app.name)}: ${vars.join(' ')}`
}

export function assertNotInjected (p: Json): void {
  const name = `${String(p.metadata.namespace)}/${String(p.metadata.name)}`
  expect(sidecarOf(p) === undefined, `${name}: an ${SIDECAR} container was added`)
  expect(p.metadata.annotations?.['onnx-sidecar.io/status'] === undefined, `${name}: has an onnx-sidecar.io/status annotation`)
  for (const c of p.spec.containers) {
    const added = (c.env ?? []).filter((e: Json) => String(e.name).startsWith('ONNX_SIDECAR_')).map((e: Json) => e.name)
    expect(added.length === 0, `${name}: ${added.join(', ')} added to ${String(c.name)}`)
  }
  expect(!(p.spec.volumes ?? []).some((v: Json) => String(v.name).startsWith('onnx-sidecar-')), `${name}: an onnx-sidecar-* volume was added`)
}
