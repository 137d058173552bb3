/**
 * The user's interface: every `onnx-sidecar.io/*` pod annotation, in one typed table,
 * parsed in one place (SPEC "Pod annotations"). An invalid value is an error whose
 * message names the annotation and the value; it is never silently replaced by a default.
 */
import { errors, InjectorError } from './errors.js'
import { LOG_LEVELS, type LogLevel } from '../common/config.js'

export const PREFIX = 'onnx-sidecar.io/'
/** Written by the injector: what it added, as JSON. Not set by users. */
export const STATUS_ANNOTATION = 'onnx-sidecar.io/status'

export interface ModelRef {
  name: string
  version?: number
}

export interface AnnotationSpec<T> {
  key: string
  description: string
  /** What applies when the annotation is absent, for the README. */
  defaultText: string
  example: string
  /** Throws an Error whose message completes "annotation KEY: "VALUE" ...". */
  parse: (raw: string) => T
}

const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
/** Kubernetes resource quantity: a decimal number and an optional binary/decimal suffix or exponent. */
const QUANTITY = /^(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/
const SUFFIX: Record<string, number> = {
  '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60
}

export interface Quantity {
  /** As written, so the pod shows exactly what the user asked for. */
  text: string
  /** In base units: cores for CPU, bytes for memory. */
  value: number
}

export function parseQuantity (raw: string): Quantity {
  const text = raw.trim()
  const m = QUANTITY.exec(text)
  if (m === null) throw new Error('is not a Kubernetes quantity (examples: 250m, 1, 256Mi, 1Gi)')
  const suffix = m[2] ?? ''
  const scale = /^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : SUFFIX[suffix] as number
  const value = Number(m[1]) * scale
  if (!(value > 0) || !Number.isFinite(value)) throw new Error('must be a quantity greater than zero')
  return { text, value }
}

export function parseModels (raw: string): ModelRef[] {
  const parts = raw.split(',').map(s => s.trim())
  if (parts.length === 0 || parts.every(p => p === '')) throw new Error('names no model (expected name[:version][,...])')
  const seen = new Set<string>()
  return parts.map(part => {
    const [name = '', version, ...rest] = part.split(':')
    if (part === '' || rest.length > 0) throw new Error(`is not a model list: '${part}' (expected name[:version][,...])`)
    if (!MODEL_NAME.test(name)) throw new Error(`is not a model list: '${name}' is not a model name (lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters)`)
    if (version !== undefined && !/^[1-9]\d{0,8}$/.test(version)) throw new Error(`is not a model list: version '${version}' of '${name}' is not a positive integer`)
    if (seen.has(part)) throw new Error(`lists '${part}' twice`)
    seen.add(part)
    return version === undefined ? { name } : { name, version: Number(version) }
  })
}

export function formatModels (models: readonly ModelRef[]): string {
  return models.map(m => m.version === undefined ? m.name : `${m.name}:${m.version}`).join(',')
}

function parseBool (raw: string): boolean {
  const v = raw.trim().toLowerCase()
  if (v === 'true') return true
  if (v === 'false') return false
  throw new Error('is not "true" or "false"')
}

function parsePort (raw: string): number {
  if (!/^\d{1,5}$/.test(raw.trim())) throw new Error('is not a port number (1-65535)')
  const n = Number(raw)
  if (n < 1 || n > 65535) throw new Error('is not a port number (1-65535)')
  return n
}

function parseThreads (raw: string): number {
  if (!/^\d{1,4}$/.test(raw.trim()) || Number(raw) < 1 || Number(raw) > 1024) throw new Error('is not a thread count (an integer from 1 to 1024)')
  return Number(raw)
}

function parseVolume (raw: string): string {
  if (!DNS_LABEL.test(raw)) throw new Error('is not a volume name (a DNS label: lowercase letters, digits and \'-\', at most 63 characters)')
  return raw
}

function parseLogLevel (raw: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(raw)) throw new Error(`is not a log level (${LOG_LEVELS.join(', ')})`)
  return raw as LogLevel
}

function spec<T> (name: string, s: Omit<AnnotationSpec<T>, 'key'>): AnnotationSpec<T> {
  return { key: PREFIX + name, ...s }
}

export const ANNOTATIONS = {
  model: spec('model', { description: 'model(s) to serve, comma-separated; `name:version` pins a version. Required: without it the pod is not changed.', defaultText: '(none: pod not injected)', example: 'ranker:3,ctr', parse: parseModels }),
  inject: spec('inject', { description: '`"false"` opts the pod out even if it carries a model annotation', defaultText: '`"true"`', example: '"false"', parse: parseBool }),
  port: spec('port', { description: 'inference port on 127.0.0.1; app containers get `ONNX_SIDECAR_URL=http://127.0.0.1:<port>`', defaultText: 'config `ports.inference` (8500)', example: '8500', parse: parsePort }),
  grpcPort: spec('grpc-port', { description: 'Open Inference Protocol gRPC port on 127.0.0.1; app containers get `ONNX_SIDECAR_GRPC_ADDRESS=127.0.0.1:<port>`', defaultText: 'config `ports.grpc` (8501)', example: '8501', parse: parsePort }),
  metricsPort: spec('metrics-port', { description: 'metrics and health port (all interfaces); probes and `prometheus.io/port` use it', defaultText: 'config `ports.metrics` (9464)', example: '9464', parse: parsePort }),
  cpu: spec('cpu', { description: 'sidecar CPU request', defaultText: 'config `resources.requests.cpu`', example: '250m', parse: parseQuantity }),
  memory: spec('memory', { description: 'sidecar memory request', defaultText: 'config `resources.requests.memory`', example: '256Mi', parse: parseQuantity }),
  cpuLimit: spec('cpu-limit', { description: 'sidecar CPU limit', defaultText: 'config `resources.limits.cpu`', example: '1', parse: parseQuantity }),
  memoryLimit: spec('memory-limit', { description: 'sidecar memory limit', defaultText: 'config `resources.limits.memory`', example: '512Mi', parse: parseQuantity }),
  threads: spec('threads', { description: 'ONNX Runtime intra-op threads per inference worker (`--threads`)', defaultText: 'from the sidecar\'s CPU limit (else request, else 1) with the sidecar\'s rule: workers = CPUs / 2, threads = (CPUs - 1) / workers, at least 1; never the node\'s core count', example: '2', parse: parseThreads }),
  volume: spec('volume', { description: 'use this existing pod volume as the model repository instead of the config\'s `modelVolume`', defaultText: 'config `modelVolume`', example: 'models', parse: parseVolume }),
  logLevel: spec('log-level', { description: 'sidecar log level', defaultText: 'config `logLevel` (info)', example: 'debug', parse: parseLogLevel }),
  nativeSidecar: spec('native-sidecar', { description: '`"false"` injects a regular container instead of a native sidecar (init container with `restartPolicy: Always`)', defaultText: 'config `nativeSidecar` (true)', example: '"false"', parse: parseBool }),
  socket: spec('socket', { description: '`"true"` also serves REST and gRPC on Unix domain sockets in an in-memory volume mounted at `/var/run/onnx-sidecar` (read-only in app containers); app containers get `ONNX_SIDECAR_SOCKET` and `ONNX_SIDECAR_GRPC_SOCKET`', defaultText: 'config `socket` (false)', example: '"true"', parse: parseBool })
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

/** Annotation values are strings in the API; offline manifests may hold unquoted YAML numbers or booleans. */
export function annotationText (value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return undefined
}

/**
 * Parses every known annotation that is present. Throws one `InjectorError` that lists
 * every invalid value (the first one's code), so a user fixes them all in one round.
 */
export function parseAnnotations (annotations: Readonly<Record<string, unknown>>): ParsedAnnotations {
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
  const first = problems[0]
  if (first !== undefined) {
    throw problems.length === 1 ? first : new InjectorError(first.code, first.statusCode, problems.map(p => p.message).join('; '))
  }
  const unknown: string[] = []
  for (const k in annotations) if (k.startsWith(PREFIX) && !KNOWN_KEYS.has(k)) unknown.push(k)
  unknown.sort()
  return { values: values as PodAnnotations, unknown }
}
