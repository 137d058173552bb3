/**
 * The sidecar's ports against each other and against the ports the pod's containers declare.
 * The injector never moves a port by itself (an app may hard-code 8500): a clash denies the
 * pod, naming the annotation to change. Every clash is returned, so all are reported at once.
 */
import { ANNOTATIONS, type PodAnnotations } from './annotations.js'
import { errors, type InjectorError } from './errors.js'
import { isObject, type JsonObject } from './merge.js'

export interface SidecarPorts { port: number, grpcPort: number, metricsPort: number }

export function checkPorts (spec: JsonObject, settings: SidecarPorts, values: PodAnnotations): InjectorError[] {
  const problems: InjectorError[] = []
  const ports = [
    { key: ANNOTATIONS.port.key, port: settings.port, given: values.port, what: 'inference port' },
    { key: ANNOTATIONS.grpcPort.key, port: settings.grpcPort, given: values.grpcPort, what: 'gRPC port' },
    { key: ANNOTATIONS.metricsPort.key, port: settings.metricsPort, given: values.metricsPort, what: 'metrics port' }
  ]
  for (const [i, a] of ports.entries()) {
    for (const b of ports.slice(i + 1)) {
      if (a.port !== b.port) continue
      const key = b.given !== undefined ? b.key : a.key // blame the annotation that moved a port onto the other
      problems.push(errors.PORT_CLASH(key, a.port, `is both the sidecar's ${a.what} and its ${b.what}; set ${a.key} and ${b.key} to different ports`))
    }
  }
  const used = new Map<number, string>()
  const lists = [spec.containers, spec.initContainers]
  for (const list of lists) {
    if (!Array.isArray(list)) continue
    for (const c of list) {
      if (!isObject(c)) continue
      if (list === spec.initContainers && c.restartPolicy !== 'Always') continue // finished before the sidecar starts
      for (const p of Array.isArray(c.ports) ? c.ports : []) {
        if (isObject(p) && typeof p.containerPort === 'number' && (p.protocol ?? 'TCP') === 'TCP' && !used.has(p.containerPort)) used.set(p.containerPort, String(c.name))
      }
    }
  }
  const reported = new Set<number>()
  for (const { key, port, given } of ports) {
    const owner = used.get(port)
    if (owner === undefined || reported.has(port)) continue
    reported.add(port)
    problems.push(errors.PORT_CLASH(key, port, `is already used by container '${owner}'${given === undefined ? ` (${port} is the default; set ${key} to a free port)` : ''}`))
  }
  return problems
}
