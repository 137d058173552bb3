/**
 * The user's interface: every `onnx-sidecar.io/*` pod annotation, in one typed table,
 * parsed in one place (docs/annotations.md). An invalid value is an error whose
 * message names the annotation and the value; it is never silently replaced by a default.
 */
import { allOf, errors, type InjectorError } from './errors.js'
import { LOG_LEVELS, type LogLevel } from '../common/config.js'
import { parseImageReference } from './image-reference.js'
import { truncateUtf8 } from '../common/truncate.js'
import { parseQuantity, type Quantity } from '../common/contract.js'
import { fleetCandidate, FleetError, parseCanary, parseCandidate, parseModelList, parsePort, parseThreads, parseCpu, parseMemory, leastMemoryLimit, BASE_MEMORY, CANARY_PERCENT, DERIVED_WORKERS_MAX, MIN_CPU, MIN_MEMORY, THREADS, WORKER_MEMORY, type ModelRef } from '../common/contract.js'

// the rules shared with `serve` live in common/contract.ts; these names stay for the injector's callers
export { parseQuantity, formatModelList as formatModels } from '../common/contract.js'

export const PREFIX = 'onnx-sidecar.io/'
/** Written by the injector: what it added, as JSON. Not set by users. */
export const STATUS_ANNOTATION = 'onnx-sidecar.io/status'

export interface AnnotationSpec<T> {
  key: string
  description: string
  /** What applies when the annotation is absent, for the README. */
  defaultText: string
  example: string
  /** Throws an Error whose message completes "annotation KEY: "VALUE" ...". */
  parse: (raw: string) => T
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/** The model list the sidecar gets as `--model`: the contract's, and at least one model. */
export function parseModels (raw: string): ModelRef[] {
  const models = parseModelList(raw)
  if (models.length === 0) throw new Error('names no model (expected name[:version][,...])')
  return models
}

function parseBool (raw: string): boolean {
  const v = raw.trim().toLowerCase()
  if (v === 'true') return true
  if (v === 'false') return false
  throw new Error('is not "true" or "false"')
}

/** `shm-size`: a memory quantity of at least 1Mi (the sizeLimit of the /dev/shm volume). */
function parseShmSize (raw: string): Quantity {
  const q = parseQuantity(raw)
  if (q.value < 2 ** 20) throw new Error('is below 1Mi, too small a /dev/shm to hold tensors (a plain number is bytes: write 64Mi)')
  return q
}

function parseVolume (raw: string): string {
  if (!DNS_LABEL.test(raw)) throw new Error('is not a volume name (a DNS label: lowercase letters, digits and \'-\', at most 63 characters)')
  return raw
}

function parseLogLevel (raw: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(raw)) throw new Error(`is not a log level (${LOG_LEVELS.join(', ')})`)
  return raw as LogLevel
}

/** Container names, comma-separated: each a DNS label, each once, at least one. */
function parseContainerList (raw: string): string[] {
  const names = raw.split(',').map(n => n.trim())
  if (names.some(n => n === '')) throw new Error('has an empty entry (expected container names, comma-separated)')
  const bad = names.find(n => !DNS_LABEL.test(n))
  if (bad !== undefined) throw new Error(`names ${JSON.stringify(bad)}, which is not a container name (a DNS label: lowercase letters, digits and '-', at most 63 characters)`)
  const twice = names.find((n, i) => names.indexOf(n) !== i)
  if (twice !== undefined) throw new Error(`names container ${twice} twice`)
  return names
}

function spec<T> (name: string, s: Omit<AnnotationSpec<T>, 'key'>): AnnotationSpec<T> {
  return { key: PREFIX + name, ...s }
}

export const ANNOTATIONS = {
  model: spec('model', { description: 'model(s) to serve, comma-separated; `name:version` pins a version; each model once (several versions: `version_policy: { specific: [3, 4] }` in its config.yaml). Required: without it the pod is not changed.', defaultText: '(none: pod not injected)', example: 'ranker:3,ctr', parse: parseModels }),
  inject: spec('inject', { description: '`"false"` opts the pod out even if it carries a model annotation', defaultText: '`"true"`', example: '"false"', parse: parseBool }),
  port: spec('port', { description: 'inference port on 127.0.0.1; app containers get `ONNX_SIDECAR_URL=http://127.0.0.1:<port>`', defaultText: 'config `ports.inference` (8500)', example: '8500', parse: parsePort }),
  grpcPort: spec('grpc-port', { description: 'Open Inference Protocol gRPC port on 127.0.0.1; app containers get `ONNX_SIDECAR_GRPC_ADDRESS=127.0.0.1:<port>`', defaultText: 'config `ports.grpc` (8501)', example: '8501', parse: parsePort }),
  metricsPort: spec('metrics-port', { description: 'metrics and health port (all interfaces); probes and `prometheus.io/port` use it', defaultText: 'config `ports.metrics` (9464)', example: '9464', parse: parsePort }),
  cpu: spec('cpu', { description: `sidecar CPU request, at least ${MIN_CPU.text}`, defaultText: 'config `resources.requests.cpu`', example: '250m', parse: parseCpu }),
  memory: spec('memory', { description: `sidecar memory request, at least ${MIN_MEMORY.text}`, defaultText: 'config `resources.requests.memory`', example: '256Mi', parse: parseMemory }),
  cpuLimit: spec('cpu-limit', { description: `sidecar CPU limit, at least ${MIN_CPU.text}; sets the workers (CPUs / 2, at most ${DERIVED_WORKERS_MAX} and what the memory limit holds) and threads`, defaultText: 'config `resources.limits.cpu`', example: '1', parse: parseCpu }),
  memoryLimit: spec('memory-limit', { description: `sidecar memory limit: room for the sidecar's fixed cost (${BASE_MEMORY / 2 ** 20} MiB), ${WORKER_MEMORY / 2 ** 20} MiB per worker and a quarter of the limit for requests, so at least ${leastMemoryLimit()}`, defaultText: 'config `resources.limits.memory`', example: '512Mi', parse: parseMemory }),
  threads: spec('threads', { description: `ONNX Runtime intra-op threads per inference worker (\`--threads\`), ${THREADS.min} to ${THREADS.max}`, defaultText: `from the sidecar's CPU limit (else request, else 1) and memory limit with the sidecar's rule: workers = CPUs / 2, at most ${DERIVED_WORKERS_MAX} and at most what the memory holds (limit - ${BASE_MEMORY / 2 ** 20} MiB - a quarter of the limit, / ${WORKER_MEMORY / 2 ** 20} MiB), threads = (CPUs - 1) / workers (at most ${THREADS.max}), at least 1; never the node's core count`, example: '2', parse: parseThreads }),
  volume: spec('volume', { description: 'use this existing pod volume as the model repository instead of the config\'s `modelVolume`', defaultText: 'config `modelVolume`', example: 'models', parse: parseVolume }),
  modelImage: spec('model-image', { description: 'serve the model repository in this OCI image (its files are the repository: `<model>/config.yaml`, `<model>/<version>/model.onnx`), mounted read-only at `/models` through a Kubernetes image volume (`volumes[].image`, Kubernetes 1.35 or later) instead of the config\'s `modelVolume`; pull policy from the config\'s `modelImage.pullPolicy`. Not with `onnx-sidecar.io/volume`. A reference without `@sha256:` digest is admitted with a warning', defaultText: '(none: the config\'s `modelVolume`)', example: '127.0.0.1:5000/models/iris@sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b', parse: parseImageReference }),
  logLevel: spec('log-level', { description: 'sidecar log level', defaultText: 'config `logLevel` (info)', example: 'debug', parse: parseLogLevel }),
  nativeSidecar: spec('native-sidecar', { description: '`"false"` injects a regular container instead of a native sidecar (init container with `restartPolicy: Always`)', defaultText: 'config `nativeSidecar` (true)', example: '"false"', parse: parseBool }),
  socket: spec('socket', { description: '`"true"` also serves REST and gRPC on Unix domain sockets in an in-memory volume mounted at `/var/run/onnx-sidecar` (read-only in app containers); app containers get `ONNX_SIDECAR_SOCKET` and `ONNX_SIDECAR_GRPC_SOCKET`', defaultText: 'config `socket` (false)', example: '"true"', parse: parseBool }),
  shmSize: spec('shm-size', { description: 'mount one memory-backed `emptyDir` (`medium: Memory`, this `sizeLimit`) at `/dev/shm` in the sidecar and the app containers (those that get the `ONNX_SIDECAR_*` variables), so apps can hand tensors over in POSIX shared memory with Triton\'s system shared-memory extension ([api.md](api.md#system-shared-memory)); the pages written there count against the pod\'s memory limit. At least 1Mi', defaultText: '(none: each container keeps its own /dev/shm)', example: '64Mi', parse: parseShmSize }),
  candidate: spec('candidate', { description: 'a rollout across the Deployment: run this version (`model:version` when the pod serves several models; in the same repository as the live version) next to the live one the `model` annotation pins or the version policy serves; the sidecar measures and exports the evidence and never promotes or rolls back itself: `onnx-sidecar rollout`, Argo Rollouts or Flagger decide ([rollouts.md](rollouts.md#a-rollout-across-a-deployment)). Passed as `--candidate model:version`', defaultText: '(none: no fleet rollout)', example: 'ads:2', parse: parseCandidate }),
  canary: spec('canary', { description: `with \`candidate\`: percent of requests (${CANARY_PERCENT.min} to ${CANARY_PERCENT.max}) the candidate answers, sticky by request id; passed as \`--canary\``, defaultText: '(none: the candidate runs as a shadow)', example: '10', parse: parseCanary }),
  containers: spec('containers', { description: 'the app containers (`spec.containers`, comma-separated names) that get the `ONNX_SIDECAR_*` variables and, with `socket`, the socket mount; the others (a log shipper, say) get nothing. A name the pod has no app container of denies the pod', defaultText: 'every app container', example: 'app,worker', parse: parseContainerList })
} as const

export type AnnotationName = keyof typeof ANNOTATIONS
export type PodAnnotations = { [K in AnnotationName]?: ReturnType<typeof ANNOTATIONS[K]['parse']> }

const KNOWN_KEYS = new Set<string>([...Object.values(ANNOTATIONS).map(a => a.key), STATUS_ANNOTATION])
const ENTRIES = Object.entries(ANNOTATIONS) as Array<[AnnotationName, AnnotationSpec<unknown>]>

export interface ParsedAnnotations {
  values: PodAnnotations
  /** `onnx-sidecar.io/*` keys this version does not know (typos, usually): warnings, not errors. */
  unknown: string[]
}

export interface ReadAnnotations extends ParsedAnnotations {
  /** One error per invalid value; `values` lacks those annotations. */
  problems: InjectorError[]
}

/** Annotation values are strings in the API; offline manifests may hold unquoted YAML numbers or booleans. */
export function annotationText (value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return undefined
}

/** Parses every known annotation that is present; an invalid value is a problem, never a default. */
export function readAnnotations (annotations: Readonly<Record<string, unknown>>): ReadAnnotations {
  const values: Record<string, unknown> = {}
  const problems: InjectorError[] = []
  for (const [name, a] of ENTRIES) {
    if (!Object.hasOwn(annotations, a.key)) continue
    const raw = annotations[a.key]
    const text = annotationText(raw)
    if (text === undefined) {
      problems.push(errors.INVALID_ANNOTATION(a.key, JSON.stringify(raw) ?? String(raw), 'is not a string'))
      continue
    }
    try {
      values[name] = a.parse(text)
    } catch (err) {
      problems.push(errors.INVALID_ANNOTATION(a.key, text, (err as Error).message))
    }
  }
  return { values: values as PodAnnotations, unknown: unknownAnnotations(annotations), problems }
}

/** The `onnx-sidecar.io/*` keys this version does not know, sorted. */
export function unknownAnnotations (annotations: Readonly<Record<string, unknown>>): string[] {
  const unknown: string[] = []
  for (const k in annotations) if (k.startsWith(PREFIX) && !KNOWN_KEYS.has(k)) unknown.push(k)
  return unknown.sort()
}

/**
 * Parses every known annotation that is present. Throws one `InjectorError` that lists
 * every invalid value (the first one's code), so a user fixes them all in one round.
 */
export function parseAnnotations (annotations: Readonly<Record<string, unknown>>): ParsedAnnotations {
  const { values, unknown, problems } = readAnnotations(annotations)
  if (problems.length > 0) throw allOf(problems)
  return { values, unknown }
}

/**
 * The sidecar's `--candidate model:version` and `--canary PCT` for the `candidate` and
 * `canary` annotations, checked against the `model` annotation with serve's rule
 * (common/contract.ts `fleetCandidate`): a canary needs a candidate; the candidate names a
 * model the pod serves (its model, when it serves one) and is not its pinned version.
 */
export function rolloutArgs (values: PodAnnotations, annotations: Readonly<Record<string, unknown>>): { args: string[], problems: InjectorError[] } {
  const keys = { model: ANNOTATIONS.model.key, candidate: ANNOTATIONS.candidate.key, canary: ANNOTATIONS.canary.key }
  try {
    const fleet = fleetCandidate(values.model ?? [], values.candidate, values.canary, keys)
    if (fleet === undefined) return { args: [], problems: [] }
    return { args: ['--candidate', `${fleet.model}:${fleet.version}`, ...(fleet.canary === undefined ? [] : ['--canary', String(fleet.canary)])], problems: [] }
  } catch (err) {
    if (!(err instanceof FleetError)) throw err
    const key = keys[err.subject]
    return { args: [], problems: [errors.INVALID_ANNOTATION(key, annotationText(annotations[key]) ?? '', err.predicate)] }
  }
}

/** Levenshtein distance, for suggestions; keys are short (the caller cuts what it compares). */
function distance (a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    row = next
  }
  return row[b.length]!
}

/** Longest key compared for a suggestion: longer ones are no typo of a known key. */
const SUGGEST_MAX_LENGTH = 64
/** Edits (insert, delete, substitute) a typo may be away from the key it suggests. */
const SUGGEST_MAX_DISTANCE = 2

/** The known annotation an unknown `onnx-sidecar.io/*` key is most likely a typo of, if one is close. */
export function suggestAnnotation (key: string): string | undefined {
  if (key.length > SUGGEST_MAX_LENGTH) return undefined
  const name = key.slice(PREFIX.length).toLowerCase()
  let best: { key: string, d: number } | undefined
  for (const a of Object.values(ANNOTATIONS)) {
    const d = distance(name, a.key.slice(PREFIX.length))
    if (d <= SUGGEST_MAX_DISTANCE && (best === undefined || d < best.d)) best = { key: a.key, d }
  }
  return best?.key
}

/** The warning for an unknown `onnx-sidecar.io/*` key, with the known key it is likely a typo of. */
export function unknownAnnotationWarning (key: string): string {
  const suggestion = suggestAnnotation(key)
  return `unknown annotation ${truncateUtf8(key, SUGGEST_MAX_LENGTH * 4)} is ignored${suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`}`
}
