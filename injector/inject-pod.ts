/**
 * The pure side of the injector: `(pod, config, namespace) -> {pod, warnings}`, shared
 * by the webhook and `onnx-sidecar inject`. It works on the raw JSON object, copying only
 * the objects it changes (the input is never modified), so fields this code does not know
 * survive untouched.
 *
 * Idempotent: the `onnx-sidecar.io/status` annotation (`status.ts`) records what was added.
 * A pod that carries it and the sidecar container is not injected again; only app
 * containers added since (another webhook, `reinvocationPolicy: IfNeeded`) get the
 * variables and the socket mount (`app-wiring.ts`) of that injection.
 */
import { ANNOTATIONS, STATUS_ANNOTATION, readAnnotations, rolloutArgs, unknownAnnotations, unknownAnnotationWarning, parseQuantity, formatModels, annotationText, type PodAnnotations, type ReadAnnotations } from './annotations.js'
import { allOf, errors, InjectorError } from './errors.js'
import { checkPorts } from './port-check.js'
import { merge, isObject, cloneJson, type Json, type JsonObject } from './merge.js'
import type { InjectionConfig, ProbeTiming } from './injection-config.js'
import { SOCKET_DIR, SOCKET_VOLUME, wireApps } from './app-wiring.js'
import { addShmVolume, SHM_VOLUME } from './shm-volume.js'
import { mountedAt, readOnlyModelVolume } from './model-volume.js'
import { formatStatus, readStatus, type InjectionStatus } from './status.js'
import { MODEL_IMAGE_VOLUME, checkModelImage, modelImageVolume } from './model-image.js'
import type { ClusterInfo } from './kube-version.js'
import { fitSidecar } from './sidecar-fit.js'

export { URL_ENV, GRPC_ADDRESS_ENV, SOCKET_ENV, GRPC_SOCKET_ENV, SOCKET_VOLUME, SOCKET_DIR } from './app-wiring.js'
export { readStatus } from './status.js'
export { MODEL_IMAGE_VOLUME } from './model-image.js'
export type { ClusterInfo } from './kube-version.js'

export const CONTAINER_NAME = 'onnx-sidecar'
const MODEL_MOUNT_PATH = '/models'
const TMP_VOLUME = 'onnx-sidecar-tmp'
export const METRICS_PORT_NAME = 'onnx-metrics'
/** The socket directory holds two socket inodes and nothing else. */
const SOCKET_SIZE_LIMIT = '1Mi'
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

interface Settings {
  models: string
  /** The model image reference, when the pod names one. */
  modelImage?: string
  port: number
  grpcPort: number
  metricsPort: number
  native: boolean
  socket: boolean
  /** CPUs the sidecar may use: its CPU limit (else request, else 1) rounded up; never the node's core count. */
  cpus: number
  workers: number
  threads: number
  logLevel: string
  /** `--candidate`, `--canary`: a rollout the fleet decides (annotations.ts `rolloutArgs`). */
  rollout: string[]
  requests: Record<string, string>
  limits: Record<string, string>
}

type PodSpec = JsonObject & { containers: Json[] }

/**
 * `cluster`: what is known about the API server (`--kube-version`); checks that need it pass when it is unknown.
 *
 * The steps, in order: skip a pod that does not ask for injection; copy what will change
 * (`copyForWriting`); resolve the settings from the annotations and the config (`resolveSettings`);
 * a pod injected before only gets its new app containers wired (`rewire`); else check the
 * overrides, ports, model image, volume and `containers` annotation, each problem found
 * (and the unknown annotations) reported in one denial, then add the volumes (`addVolumes`), the sidecar (`placeSidecar`),
 * the app wiring, the Prometheus annotations (`addPrometheusAnnotations`), and the status.
 */
export function inject (input: unknown, config: InjectionConfig, namespace = '', cluster: ClusterInfo = {}): InjectResult {
  const metadata = isObject(input) && isObject(input.metadata) ? input.metadata : {}
  const annotations = isObject(metadata.annotations) ? metadata.annotations : {}
  if (!Object.hasOwn(annotations, ANNOTATIONS.model.key)) {
    // never changed nor denied; a misspelled key (`onnx-sidecar.io/modle`) is a warning, the one hint why
    return { pod: input, outcome: 'skipped', reason: `no ${ANNOTATIONS.model.key} annotation`, warnings: unknownAnnotations(annotations).map(unknownAnnotationWarning) }
  }
  const parsed = readAnnotations(annotations)
  // unknown keys (typos, usually) are warnings, and notes on a denial for another reason
  const unknown = parsed.unknown.map(unknownAnnotationWarning)
  try {
    return injectParsed(input, annotations, parsed, config, namespace, cluster, unknown)
  } catch (err) {
    if (!(err instanceof InjectorError) || unknown.length === 0) throw err
    throw allOf([err], unknown)
  }
}

function injectParsed (input: unknown, annotations: JsonObject, parsed: ReadAnnotations, config: InjectionConfig, namespace: string, cluster: ClusterInfo, unknown: string[]): InjectResult {
  if (parsed.problems.length > 0) throw allOf(parsed.problems)
  if (parsed.values.inject === false) {
    return { pod: input, outcome: 'skipped', reason: `${ANNOTATIONS.inject.key} is "false"`, warnings: [] }
  }
  const inputSpec = isObject(input) ? input.spec : undefined
  if (!isObject(inputSpec) || !Array.isArray(inputSpec.containers)) throw errors.INVALID_POD(`spec.containers is missing${namespace === '' ? '' : ` (namespace ${namespace})`}`)
  const { pod, spec, annotations: podAnnotations } = copyForWriting(input as JsonObject, inputSpec as PodSpec)
  const warnings = [...unknown]
  // every problem found is reported at once (the first one's code): a user fixes them in one round
  const problems: InjectorError[] = []
  const settings = resolveSettings(parsed.values, config, problems)
  const rollout = rolloutArgs(parsed.values, annotations)
  problems.push(...rollout.problems)
  settings.rollout = rollout.args

  const previous = readStatus(annotations[STATUS_ANNOTATION])
  if (previous !== undefined && findContainer(spec, previous.container) !== undefined) {
    if (problems.length > 0) throw allOf(problems)
    warnings.push(...rewire(spec, podAnnotations, previous, settings, parsed.values))
    return { pod, outcome: 'already-injected', warnings }
  }

  const override = takeContainer(spec, CONTAINER_NAME)
  if (spec.containers.length === 0) throw errors.INVALID_POD(`its only container is named ${CONTAINER_NAME}; that name is reserved for the injected sidecar (a container of that name holds overrides)`)
  // the resources, workers and threads the sidecar gets, overrides included, checked against serve's contract
  collect(problems, () => {
    const fit = fitSidecar(settings, parsed.values, config, override)
    Object.assign(settings, { requests: fit.requests, limits: fit.limits, cpus: fit.cpus, workers: fit.workers, threads: fit.threads })
    warnings.push(...fit.warnings)
  })
  problems.push(...checkPorts(spec, settings, parsed.values))
  const modelImage = parsed.values.modelImage
  if (modelImage !== undefined) collect(problems, () => warnings.push(...checkModelImage(modelImage, parsed.values, cluster)))
  problems.push(...checkVolumes(spec, parsed.values), ...checkAppContainers(spec, parsed.values))
  if (problems.length > 0) throw allOf(problems)

  const { modelVolume, added: addedVolumes } = addVolumes(spec, settings, parsed.values, config)
  const sidecar = placeSidecar(spec, settings, config, modelVolume, override)
  const wired = wireApps(spec, CONTAINER_NAME, { port: settings.port, grpcPort: settings.grpcPort, socket: settings.socket, socketAnnotated: parsed.values.socket !== undefined, containers: parsed.values.containers })
  if (parsed.values.shmSize !== undefined) {
    const shm = addShmVolume(spec, parsed.values.shmSize.text, sidecar, parsed.values.containers)
    if (shm.added) addedVolumes.push(SHM_VOLUME)
    warnings.push(...shm.warnings)
  }
  warnings.push(...readOnlyModelVolume(spec, modelVolume))
  const prometheus = config.prometheusAnnotations ? addPrometheusAnnotations(podAnnotations, settings) : { added: [], warnings: [] }
  warnings.push(...prometheus.warnings)
  warnings.push(...softProblems(spec, settings))
  podAnnotations[STATUS_ANNOTATION] = formatStatus({
    version: 1,
    models: settings.models,
    ...(settings.modelImage === undefined ? {} : { modelImage: settings.modelImage }),
    port: settings.port,
    grpcPort: settings.grpcPort,
    metricsPort: settings.metricsPort,
    native: settings.native,
    socket: settings.socket,
    container: CONTAINER_NAME,
    volumes: addedVolumes,
    env: wired.env,
    mounts: wired.mounts,
    annotations: prometheus.added
  })
  return { pod, outcome: 'injected', warnings }
}

/** Runs a check that throws; its `InjectorError` joins the problems instead. */
function collect (problems: InjectorError[], check: () => unknown): void {
  try {
    check()
  } catch (err) {
    if (!(err instanceof InjectorError)) throw err
    problems.push(err)
  }
}

/** The model volume the annotations name: the pod's own (it must exist), or the image volume (its name must be free). */
function checkVolumes (spec: JsonObject, values: PodAnnotations): InjectorError[] {
  const volumeNames = (Array.isArray(spec.volumes) ? spec.volumes : []).filter(isObject).map(v => String(v.name))
  if (values.modelImage !== undefined) {
    return volumeNames.includes(MODEL_IMAGE_VOLUME) ? [errors.INVALID_POD(`it already has a volume named ${MODEL_IMAGE_VOLUME}; that name is reserved for the volume of ${ANNOTATIONS.modelImage.key}`)] : []
  }
  if (values.volume !== undefined && !volumeNames.includes(values.volume)) return [errors.UNKNOWN_VOLUME(ANNOTATIONS.volume.key, values.volume, volumeNames)]
  return []
}

/** Every name in `onnx-sidecar.io/containers` must be an app container of the pod (the sidecar's override taken out). */
function checkAppContainers (spec: PodSpec, values: PodAnnotations): InjectorError[] {
  if (values.containers === undefined) return []
  const names = spec.containers.filter(isObject).map(c => String(c.name))
  const missing = values.containers.filter(n => !names.includes(n))
  if (missing.length === 0) return []
  return [errors.INVALID_ANNOTATION(ANNOTATIONS.containers.key, values.containers.join(','),
    `names ${missing.length === 1 ? 'a container' : 'containers'} the pod does not have: ${missing.join(', ')} (app containers: ${names.join(', ')})`)]
}

/**
 * A pod injected before (its status annotation and sidecar are there): app containers added
 * since get the wiring of that injection, and the status records them. Settings that differ
 * from the recorded ones are not applied; each is a warning. Returns the warnings.
 */
function rewire (spec: PodSpec, podAnnotations: JsonObject, previous: InjectionStatus, settings: Settings, values: PodAnnotations): string[] {
  const warnings: string[] = []
  const added = wireApps(spec, previous.container, { port: previous.port, grpcPort: previous.grpcPort, socket: previous.socket, socketAnnotated: values.socket !== undefined, containers: values.containers })
  const previousVolume = mountedAt(findContainer(spec, previous.container), MODEL_MOUNT_PATH)
  if (previousVolume !== undefined) warnings.push(...readOnlyModelVolume(spec, previousVolume)) // containers added since
  for (const [key, was, now] of [
    [ANNOTATIONS.model.key, previous.models, settings.models],
    [ANNOTATIONS.modelImage.key, previous.modelImage ?? '(none)', settings.modelImage ?? '(none)'],
    [ANNOTATIONS.port.key, previous.port, settings.port],
    [ANNOTATIONS.grpcPort.key, previous.grpcPort ?? settings.grpcPort, settings.grpcPort], // no gRPC port recorded: injected before gRPC
    [ANNOTATIONS.metricsPort.key, previous.metricsPort, settings.metricsPort],
    [ANNOTATIONS.nativeSidecar.key, previous.native, settings.native],
    [ANNOTATIONS.socket.key, previous.socket, settings.socket]
  ] as const) {
    if (was !== now) warnings.push(`already injected with ${key}=${String(was)}; to apply ${String(now)}, remove the ${previous.container} container and the ${STATUS_ANNOTATION} annotation`)
  }
  if (Object.values(added.env).some(list => list.length > 0) || added.mounts.length > 0) {
    const env = { ...previous.env }
    for (const [name, list] of Object.entries(added.env)) env[name] = [...(env[name] ?? []), ...list]
    podAnnotations[STATUS_ANNOTATION] = formatStatus({ ...previous, env, mounts: [...previous.mounts, ...added.mounts] })
  }
  return warnings
}

/**
 * The model volume (the image volume, the pod's own volume named by the annotation, or the
 * config's), the tmp volume and the socket volume, each unless the pod has a volume of that
 * name. Returns the model volume's name and the volumes added.
 */
function addVolumes (spec: PodSpec, settings: Settings, values: PodAnnotations, config: InjectionConfig): { modelVolume: string, added: string[] } {
  const volumes = Array.isArray(spec.volumes) ? spec.volumes : (spec.volumes = [])
  const volumeNames = volumes.filter(isObject).map(v => String(v.name))
  const added: string[] = []
  let modelVolume: string
  if (values.modelImage !== undefined) {
    modelVolume = MODEL_IMAGE_VOLUME // free: checkVolumes
    volumes.push(modelImageVolume(values.modelImage, config))
    added.push(modelVolume)
  } else if (values.volume !== undefined) {
    modelVolume = values.volume // the pod has it: checkVolumes
  } else {
    modelVolume = config.modelVolume.name
    if (!volumeNames.includes(modelVolume)) {
      volumes.push(cloneJson(config.modelVolume))
      added.push(modelVolume)
    }
  }
  if (!volumeNames.includes(TMP_VOLUME)) {
    volumes.push({ name: TMP_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: config.tmpSizeLimit } })
    added.push(TMP_VOLUME)
  }
  // like the tmp volume, and as Istio treats its own volumes: a pod volume of that name is the pod's choice and wins
  if (settings.socket && !volumeNames.includes(SOCKET_VOLUME)) {
    volumes.push({ name: SOCKET_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: SOCKET_SIZE_LIMIT } })
    added.push(SOCKET_VOLUME)
  }
  return { modelVolume, added }
}

/** The sidecar container, with the pod's override merged in, appended to the init containers (native sidecar) or the containers. */
function placeSidecar (spec: PodSpec, settings: Settings, config: InjectionConfig, modelVolume: string, override: JsonObject | undefined): JsonObject {
  let container = sidecarContainer(settings, config, modelVolume)
  if (override !== undefined) container = { ...(merge(container, override) as JsonObject), name: CONTAINER_NAME }
  if (settings.native) {
    const init = Array.isArray(spec.initContainers) ? spec.initContainers : (spec.initContainers = [])
    init.push(container)
  } else {
    spec.containers.push(container)
  }
  return container
}

/**
 * `prometheus.io/scrape`, `port` and `path` for the sidecar's metrics, each unless the pod
 * sets it; a pod that points them elsewhere gets a warning. Returns the keys added.
 */
function addPrometheusAnnotations (podAnnotations: JsonObject, settings: Settings): { added: string[], warnings: string[] } {
  const added: string[] = []
  const warnings: string[] = []
  const wanted = { [PROMETHEUS.scrape]: 'true', [PROMETHEUS.port]: String(settings.metricsPort), [PROMETHEUS.path]: '/metrics' }
  for (const [key, value] of Object.entries(wanted)) {
    const existing = annotationText(podAnnotations[key])
    if (existing === undefined) {
      podAnnotations[key] = value
      added.push(key)
    } else if (existing !== value && key !== PROMETHEUS.scrape) {
      warnings.push(`the pod sets ${key}=${existing}, so Prometheus will not scrape the sidecar's metrics (${key === PROMETHEUS.port ? `port ${value}` : value}) through annotations`)
    }
  }
  return { added, warnings }
}

/** A request above its limit is a problem; the settings are resolved anyway, so the other checks still run. */
function resolveSettings (values: PodAnnotations, config: InjectionConfig, problems: InjectorError[]): Settings {
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
      problems.push(errors.INVALID_ANNOTATION(key, value, detail))
    }
  }
  return {
    models: formatModels(values.model ?? []),
    ...(values.modelImage === undefined ? {} : { modelImage: values.modelImage.text }),
    port: values.port ?? config.ports.inference,
    grpcPort: values.grpcPort ?? config.ports.grpc,
    metricsPort: values.metricsPort ?? config.ports.metrics,
    native: values.nativeSidecar ?? config.nativeSidecar,
    socket: values.socket ?? config.socket,
    // set by `fitSidecar` once the override container is known
    cpus: 1,
    workers: 1,
    threads: 1,
    logLevel: values.logLevel ?? config.logLevel,
    rollout: [],
    requests,
    limits
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
      ...s.rollout,
      '--host', '127.0.0.1',
      '--port', String(s.port),
      '--grpc-port', String(s.grpcPort),
      '--metrics-port', String(s.metricsPort),
      ...(s.socket ? ['--socket-dir', SOCKET_DIR] : []),
      '--workers', String(s.workers),
      '--threads', String(s.threads),
      '--log-level', s.logLevel
    ],
    // Only the metrics port is declared: the inference and gRPC ports listen on 127.0.0.1,
    // where nothing outside the pod can reach them, so naming them would only mislead.
    ports: [{ name: METRICS_PORT_NAME, containerPort: s.metricsPort, protocol: 'TCP' }],
    resources,
    volumeMounts: [
      { name: modelVolume, mountPath: MODEL_MOUNT_PATH, readOnly: true },
      { name: TMP_VOLUME, mountPath: '/tmp' },
      ...(s.socket ? [{ name: SOCKET_VOLUME, mountPath: SOCKET_DIR }] : [])
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

function softProblems (spec: JsonObject, s: Settings): string[] {
  const out: string[] = []
  if (spec.hostNetwork === true) out.push(`hostNetwork: true: the sidecar's metrics port ${s.metricsPort} opens on the node's network and its ports may clash with other pods on the node`)
  if (!s.native && (spec.restartPolicy === 'Never' || spec.restartPolicy === 'OnFailure')) {
    out.push(`${ANNOTATIONS.nativeSidecar.key} is "false" and restartPolicy is ${String(spec.restartPolicy)}: the sidecar keeps running, so a Job's pod never completes`)
  }
  const podSc = isObject(spec.securityContext) ? spec.securityContext : {}
  if (podSc.runAsUser === 0) out.push('securityContext.runAsUser is 0: the sidecar requires a non-root user and will not start unless its container sets runAsUser')
  if (s.socket && typeof podSc.fsGroup !== 'number') {
    out.push(`${ANNOTATIONS.socket.key}: the pod sets no securityContext.fsGroup, and the sockets in ${SOCKET_DIR} are mode 0660: app containers reach them only if they run as the sidecar's user or group; set spec.securityContext.fsGroup (ONNX_SIDECAR_URL works either way)`)
  }
  return out
}

/**
 * Copy on write: a shallow copy of every object and list `inject` may change (the pod, its
 * metadata and annotations, its spec and the spec's container and volume lists; `wireApps`
 * copies an app container before it writes to it). Everything else stays shared with the
 * input, which is never modified. The patch diff skips a shared subtree at once
 * (`compare` stops at `===`), so it walks only what changed.
 */
function copyForWriting (input: JsonObject, inputSpec: PodSpec): { pod: JsonObject, spec: PodSpec, annotations: JsonObject } {
  const metadata: JsonObject = isObject(input.metadata) ? { ...input.metadata } : {}
  const annotations: JsonObject = isObject(metadata.annotations) ? { ...metadata.annotations } : {}
  metadata.annotations = annotations
  const spec: PodSpec = { ...inputSpec, containers: inputSpec.containers.slice() }
  for (const field of ['initContainers', 'volumes'] as const) {
    const list = spec[field]
    if (Array.isArray(list)) spec[field] = list.slice()
  }
  return { pod: { ...input, metadata, spec }, spec, annotations }
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
