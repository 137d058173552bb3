/**
 * The pure side of the injector: `(pod, config, namespace) -> {pod, warnings}`, shared
 * by the webhook and `onnx-sidecar inject`. It works on the raw JSON object (a clone:
 * the input is never modified), so fields this code does not know survive untouched.
 *
 * Idempotent: the `onnx-sidecar.io/status` annotation records what was added. A pod that
 * carries it and the sidecar container is not injected again; only app containers added
 * since (another webhook, `reinvocationPolicy: IfNeeded`) get `ONNX_SIDECAR_URL`.
 */
import { ANNOTATIONS, STATUS_ANNOTATION, parseAnnotations, parseQuantity, formatModels, annotationText, type PodAnnotations } from './annotations.js'
import { errors } from './errors.js'
import { merge, isObject, cloneJson, type Json, type JsonObject } from './merge.js'
import type { InjectionConfig, ProbeTiming } from './injection-config.js'
import { defaultParallelism } from '../common/cpu.js'

export const CONTAINER_NAME = 'onnx-sidecar'
export const MODEL_MOUNT_PATH = '/models'
export const TMP_VOLUME = 'onnx-sidecar-tmp'
export const URL_ENV = 'ONNX_SIDECAR_URL'
export const METRICS_PORT_NAME = 'onnx-metrics'
const PROMETHEUS = { scrape: 'prometheus.io/scrape', port: 'prometheus.io/port', path: 'prometheus.io/path' } as const

export type Outcome = 'injected' | 'already-injected' | 'skipped'

export interface InjectResult {
  /** The pod after injection; the same object as the input when `outcome` is `skipped`. */
  pod: unknown
  outcome: Outcome
  /** Why nothing was done, for `skipped`. */
  reason?: string
  /** Problems that do not block the pod (admission warnings). */
  warnings: string[]
}

/** The JSON kept in `onnx-sidecar.io/status`: enough to explain and to undo the injection. */
export interface InjectionStatus {
  version: 1
  models: string
  port: number
  metricsPort: number
  native: boolean
  container: string
  /** Volumes the injector added to the pod. */
  volumes: string[]
  /** App containers that got `ONNX_SIDECAR_URL`. */
  env: string[]
  /** Pod annotations the injector added (besides this one). */
  annotations: string[]
}

interface Settings {
  models: string
  port: number
  metricsPort: number
  native: boolean
  /** CPUs the sidecar may use: its CPU limit (else request, else 1) rounded up; never the node's core count. */
  cpus: number
  workers: number
  threads: number
  logLevel: string
  requests: Record<string, string>
  limits: Record<string, string>
}

export function inject (input: unknown, config: InjectionConfig, namespace = ''): InjectResult {
  const metadata = isObject(input) && isObject(input.metadata) ? input.metadata : {}
  const annotations = isObject(metadata.annotations) ? metadata.annotations : {}
  if (!Object.hasOwn(annotations, ANNOTATIONS.model.key)) {
    return { pod: input, outcome: 'skipped', reason: `no ${ANNOTATIONS.model.key} annotation`, warnings: [] }
  }
  const parsed = parseAnnotations(annotations)
  if (parsed.values.inject === false) {
    return { pod: input, outcome: 'skipped', reason: `${ANNOTATIONS.inject.key} is "false"`, warnings: [] }
  }
  const pod = cloneJson(input) as JsonObject
  const spec = pod.spec
  if (!isObject(spec) || !Array.isArray(spec.containers)) throw errors.INVALID_POD(`spec.containers is missing${namespace === '' ? '' : ` (namespace ${namespace})`}`)
  const warnings = parsed.unknown.map(k => `unknown annotation ${k} is ignored`)
  const settings = resolveSettings(parsed.values, config)
  const podAnnotations = ensureAnnotations(pod)

  const previous = readStatus(annotations[STATUS_ANNOTATION])
  if (previous !== undefined && findContainer(spec, previous.container) !== undefined) {
    const added = addUrlEnv(spec, previous.container, previous.port)
    for (const [key, was, now] of [
      [ANNOTATIONS.model.key, previous.models, settings.models],
      [ANNOTATIONS.port.key, previous.port, settings.port],
      [ANNOTATIONS.metricsPort.key, previous.metricsPort, settings.metricsPort],
      [ANNOTATIONS.nativeSidecar.key, previous.native, settings.native]
    ] as const) {
      if (was !== now) warnings.push(`already injected with ${key}=${String(was)}; to apply ${String(now)}, remove the ${previous.container} container and the ${STATUS_ANNOTATION} annotation`)
    }
    if (added.length > 0) podAnnotations[STATUS_ANNOTATION] = formatStatus({ ...previous, env: [...previous.env, ...added] })
    return { pod, outcome: 'already-injected', warnings }
  }

  const override = takeContainer(spec, CONTAINER_NAME)
  if (spec.containers.length === 0) throw errors.INVALID_POD(`its only container is named ${CONTAINER_NAME}; that name is reserved for the injected sidecar (a container of that name holds overrides)`)
  checkPorts(spec, settings, parsed.values)

  const volumes = Array.isArray(spec.volumes) ? spec.volumes : (spec.volumes = [])
  const volumeNames = volumes.filter(isObject).map(v => String(v.name))
  const addedVolumes: string[] = []
  let modelVolume: string
  if (parsed.values.volume !== undefined) {
    modelVolume = parsed.values.volume
    if (!volumeNames.includes(modelVolume)) throw errors.UNKNOWN_VOLUME(ANNOTATIONS.volume.key, modelVolume, volumeNames)
  } else {
    modelVolume = config.modelVolume.name
    if (!volumeNames.includes(modelVolume)) {
      volumes.push(cloneJson(config.modelVolume))
      addedVolumes.push(modelVolume)
    }
  }
  if (!volumeNames.includes(TMP_VOLUME)) {
    volumes.push({ name: TMP_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: config.tmpSizeLimit } })
    addedVolumes.push(TMP_VOLUME)
  }

  let container = sidecarContainer(settings, config, modelVolume)
  if (override !== undefined) container = { ...(merge(container, override) as JsonObject), name: CONTAINER_NAME }
  if (settings.native) {
    const init = Array.isArray(spec.initContainers) ? spec.initContainers : (spec.initContainers = [])
    init.push(container)
  } else {
    spec.containers.push(container)
  }

  const env = addUrlEnv(spec, CONTAINER_NAME, settings.port)
  const addedAnnotations: string[] = []
  if (config.prometheusAnnotations) {
    const wanted = { [PROMETHEUS.scrape]: 'true', [PROMETHEUS.port]: String(settings.metricsPort), [PROMETHEUS.path]: '/metrics' }
    for (const [key, value] of Object.entries(wanted)) {
      const existing = annotationText(podAnnotations[key])
      if (existing === undefined) {
        podAnnotations[key] = value
        addedAnnotations.push(key)
      } else if (existing !== value && key !== PROMETHEUS.scrape) {
        warnings.push(`the pod sets ${key}=${existing}, so Prometheus will not scrape the sidecar's metrics (${key === PROMETHEUS.port ? `port ${value}` : value}) through annotations`)
      }
    }
  }
  warnings.push(...softProblems(spec, settings))
  podAnnotations[STATUS_ANNOTATION] = formatStatus({
    version: 1,
    models: settings.models,
    port: settings.port,
    metricsPort: settings.metricsPort,
    native: settings.native,
    container: CONTAINER_NAME,
    volumes: addedVolumes,
    env,
    annotations: addedAnnotations
  })
  return { pod, outcome: 'injected', warnings }
}

function resolveSettings (values: PodAnnotations, config: InjectionConfig): Settings {
  const requests = { ...config.resources.requests }
  const limits = { ...config.resources.limits }
  for (const [resource, req, lim] of [['cpu', 'cpu', 'cpuLimit'], ['memory', 'memory', 'memoryLimit']] as const) {
    const request = values[req]
    const limit = values[lim]
    if (request !== undefined) requests[resource] = request.text
    if (limit !== undefined) limits[resource] = limit.text
    const r = requests[resource]
    const l = limits[resource]
    if (r !== undefined && l !== undefined && parseQuantity(r).value > parseQuantity(l).value) {
      const key = request !== undefined ? ANNOTATIONS[req].key : ANNOTATIONS[lim].key
      const value = request !== undefined ? request.text : l
      const detail = request !== undefined
        ? `is above the ${resource} limit ${l}${limit === undefined ? ` (from the injection config); set ${ANNOTATIONS[lim].key} too` : ` (${ANNOTATIONS[lim].key})`}`
        : `is below the ${resource} request ${r} (from the injection config); set ${ANNOTATIONS[req].key} too`
      throw errors.INVALID_ANNOTATION(key, value, detail)
    }
  }
  const cores = limits.cpu ?? requests.cpu
  const cpus = cores === undefined ? 1 : Math.max(1, Math.ceil(parseQuantity(cores).value))
  const parallelism = defaultParallelism(cpus) // the sidecar's own rule, applied to the pod's CPU limit
  return {
    models: formatModels(values.model ?? []),
    port: values.port ?? config.ports.inference,
    metricsPort: values.metricsPort ?? config.ports.metrics,
    native: values.nativeSidecar ?? config.nativeSidecar,
    cpus,
    workers: parallelism.workers,
    threads: values.threads ?? parallelism.threads,
    logLevel: values.logLevel ?? config.logLevel,
    requests,
    limits
  }
}

function checkPorts (spec: JsonObject, settings: Settings, values: PodAnnotations): void {
  const portKey = ANNOTATIONS.port.key
  const metricsKey = ANNOTATIONS.metricsPort.key
  if (settings.port === settings.metricsPort) {
    const key = values.metricsPort !== undefined ? metricsKey : portKey
    throw errors.PORT_CLASH(key, settings.port, `is both the sidecar's inference port and its metrics port; set ${portKey} and ${metricsKey} to different ports`)
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
  for (const [key, port, given] of [[portKey, settings.port, values.port], [metricsKey, settings.metricsPort, values.metricsPort]] as const) {
    const owner = used.get(port)
    if (owner !== undefined) {
      throw errors.PORT_CLASH(key, port, `is already used by container '${owner}'${given === undefined ? ` (${port} is the default; set ${key} to a free port)` : ''}`)
    }
  }
}

function probe (path: string, port: number, timing: ProbeTiming): JsonObject {
  return { httpGet: { path, port }, ...timing }
}

function sidecarContainer (s: Settings, config: InjectionConfig, modelVolume: string): JsonObject {
  const resources: JsonObject = {}
  if (Object.keys(s.requests).length > 0) resources.requests = s.requests
  if (Object.keys(s.limits).length > 0) resources.limits = s.limits
  const container: JsonObject = {
    name: CONTAINER_NAME,
    image: config.image,
    imagePullPolicy: config.imagePullPolicy,
    args: [
      'serve',
      '--model-repository', MODEL_MOUNT_PATH,
      '--model', s.models,
      '--host', '127.0.0.1',
      '--port', String(s.port),
      '--metrics-port', String(s.metricsPort),
      '--workers', String(s.workers),
      '--threads', String(s.threads),
      '--log-level', s.logLevel
    ],
    ports: [{ name: METRICS_PORT_NAME, containerPort: s.metricsPort, protocol: 'TCP' }],
    resources,
    volumeMounts: [
      { name: modelVolume, mountPath: MODEL_MOUNT_PATH, readOnly: true },
      { name: TMP_VOLUME, mountPath: '/tmp' }
    ],
    startupProbe: probe('/v2/health/ready', s.metricsPort, config.startupProbe),
    readinessProbe: probe('/v2/health/ready', s.metricsPort, config.readinessProbe),
    livenessProbe: probe('/v2/health/live', s.metricsPort, config.livenessProbe),
    securityContext: cloneJson(config.securityContext),
    terminationMessagePolicy: 'FallbackToLogsOnError'
  }
  if (config.env.length > 0) container.env = cloneJson(config.env)
  if (s.native) container.restartPolicy = 'Always'
  return container
}

/** Prepends `ONNX_SIDECAR_URL` (so later variables can use `$(ONNX_SIDECAR_URL)`) to app containers that lack it. */
function addUrlEnv (spec: JsonObject, sidecar: string, port: number): string[] {
  const added: string[] = []
  for (const c of Array.isArray(spec.containers) ? spec.containers : []) {
    if (!isObject(c) || c.name === sidecar) continue
    const env = Array.isArray(c.env) ? c.env : []
    if (env.some(e => isObject(e) && e.name === URL_ENV)) continue
    c.env = [{ name: URL_ENV, value: `http://127.0.0.1:${port}` }, ...env]
    added.push(String(c.name))
  }
  return added
}

function softProblems (spec: JsonObject, s: Settings): string[] {
  const out: string[] = []
  if (spec.hostNetwork === true) out.push(`hostNetwork: true: the sidecar's metrics port ${s.metricsPort} opens on the node's network and its ports may clash with other pods on the node`)
  if (!s.native && (spec.restartPolicy === 'Never' || spec.restartPolicy === 'OnFailure')) {
    out.push(`${ANNOTATIONS.nativeSidecar.key} is "false" and restartPolicy is ${String(spec.restartPolicy)}: the sidecar keeps running, so a Job's pod never completes`)
  }
  const podSc = isObject(spec.securityContext) ? spec.securityContext : {}
  if (podSc.runAsUser === 0) out.push('securityContext.runAsUser is 0: the sidecar requires a non-root user and will not start unless its container sets runAsUser')
  return out
}

function ensureAnnotations (pod: JsonObject): JsonObject {
  const metadata = isObject(pod.metadata) ? pod.metadata : (pod.metadata = {})
  if (!isObject(metadata.annotations)) metadata.annotations = {}
  return metadata.annotations as JsonObject
}

function findContainer (spec: JsonObject, name: string): JsonObject | undefined {
  for (const list of [spec.initContainers, spec.containers]) {
    if (!Array.isArray(list)) continue
    const found = list.find(c => isObject(c) && c.name === name)
    if (found !== undefined) return found as JsonObject
  }
  return undefined
}

/** Removes a user-supplied container of that name from whichever list holds it. */
function takeContainer (spec: JsonObject, name: string): JsonObject | undefined {
  let taken: JsonObject | undefined
  for (const field of ['initContainers', 'containers'] as const) {
    const list = spec[field]
    if (!Array.isArray(list)) continue
    const at = list.findIndex(c => isObject(c) && c.name === name)
    if (at === -1) continue
    const [found] = list.splice(at, 1)
    taken = merge(taken, found as Json) as JsonObject
  }
  return taken
}

export function formatStatus (s: InjectionStatus): string {
  // fixed key order, so the annotation is byte-for-byte stable
  return JSON.stringify({
    version: s.version,
    container: s.container,
    models: s.models,
    port: s.port,
    metricsPort: s.metricsPort,
    native: s.native,
    volumes: s.volumes,
    env: s.env,
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
  return {
    version: 1,
    container: s.container,
    models: typeof s.models === 'string' ? s.models : '',
    port: s.port,
    metricsPort: s.metricsPort,
    native: s.native === true,
    volumes: strings(s.volumes),
    env: strings(s.env),
    annotations: strings(s.annotations)
  }
}
