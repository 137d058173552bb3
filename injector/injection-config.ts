/**
 * The injection config: what the chart's ConfigMap holds and what `inject --config` reads.
 * YAML or JSON, validated with a JSON schema, merged over the built-in defaults below
 * (objects key by key; lists, scalars and `modelVolume` replace the default).
 */
import { readFileSync } from 'node:fs'
import { Ajv } from 'ajv'
import { parse as parseYaml } from 'yaml'
import { errors } from './errors.js'
import { merge, isObject, type Json, type JsonObject } from './merge.js'
import { parseQuantity, parseCpu, parseMemory, planParallelism, memoryBudgetFor } from '../common/contract.js'
import { LOG_LEVELS, type LogLevel } from '../common/config.js'

export interface ProbeTiming {
  initialDelaySeconds: number
  periodSeconds: number
  timeoutSeconds: number
  failureThreshold: number
}

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const
export type PullPolicy = typeof PULL_POLICIES[number]

export interface InjectionConfig {
  image: string
  imagePullPolicy: PullPolicy
  nativeSidecar: boolean
  ports: { inference: number, grpc: number, metrics: number }
  /** Also serve on Unix domain sockets in a shared in-memory volume (pods override with `onnx-sidecar.io/socket`). */
  socket: boolean
  resources: { requests: Record<string, string>, limits: Record<string, string> }
  /** A Kubernetes `Volume`: a name and any one volume source (PVC, NFS, hostPath, CSI, image, ...). */
  modelVolume: JsonObject & { name: string }
  /** The image volume of a pod annotated `onnx-sidecar.io/model-image`. */
  modelImage: { pullPolicy: PullPolicy }
  /** Size of the writable in-memory `/tmp` the sidecar gets (its root filesystem is read-only). */
  tmpSizeLimit: string
  startupProbe: ProbeTiming
  readinessProbe: ProbeTiming
  livenessProbe: ProbeTiming
  logLevel: LogLevel
  /** Extra environment for the sidecar (Kubernetes `EnvVar`s), e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  env: JsonObject[]
  /** Container security context, merged over the hardened default. */
  securityContext: JsonObject
  /** Add `prometheus.io/scrape|port|path` pod annotations (never over ones the pod sets). */
  prometheusAnnotations: boolean
}

export const DEFAULT_CONFIG: InjectionConfig = Object.freeze({
  image: 'ghcr.io/onnx-sidecar/onnx-sidecar:0.1.0', // the chart sets this from its appVersion
  imagePullPolicy: 'IfNotPresent',
  nativeSidecar: true,
  ports: { inference: 8500, grpc: 8501, metrics: 9464 }, // inference and gRPC on 127.0.0.1, metrics on all interfaces
  socket: false,
  resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
  modelVolume: { name: 'onnx-sidecar-models', persistentVolumeClaim: { claimName: 'onnx-sidecar-models', readOnly: true } },
  // IfNotPresent: a digest never changes, so a node pulls it once; a moved tag needs Always (or a new digest)
  modelImage: { pullPolicy: 'IfNotPresent' },
  tmpSizeLimit: '64Mi',
  // Model load and warm-up may take a while: up to 300 × 1 s = 5 minutes before the kubelet restarts the sidecar.
  startupProbe: { initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 2, failureThreshold: 300 },
  readinessProbe: { initialDelaySeconds: 0, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3 }, // 15 s
  livenessProbe: { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 }, // 30 s
  logLevel: 'info',
  env: [],
  securityContext: {
    runAsNonRoot: true,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' }
  },
  prometheusAnnotations: true
} satisfies InjectionConfig)

const probe = {
  type: 'object',
  additionalProperties: false,
  properties: {
    initialDelaySeconds: { type: 'integer', minimum: 0 },
    periodSeconds: { type: 'integer', minimum: 1 },
    timeoutSeconds: { type: 'integer', minimum: 1 },
    failureThreshold: { type: 'integer', minimum: 1 }
  }
}
const quantities = { type: 'object', additionalProperties: { type: ['string', 'number'] } }
const port = { type: 'integer', minimum: 1, maximum: 65535 }

export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    image: { type: 'string', minLength: 1 },
    imagePullPolicy: { enum: [...PULL_POLICIES] },
    nativeSidecar: { type: 'boolean' },
    ports: { type: 'object', additionalProperties: false, properties: { inference: port, grpc: port, metrics: port } },
    socket: { type: 'boolean' },
    resources: { type: 'object', additionalProperties: false, properties: { requests: quantities, limits: quantities } },
    modelVolume: {
      type: 'object',
      properties: { name: { type: 'string', pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' } },
      // a name plus exactly one volume source
      minProperties: 1,
      maxProperties: 2
    },
    modelImage: { type: 'object', additionalProperties: false, properties: { pullPolicy: { enum: [...PULL_POLICIES] } } },
    tmpSizeLimit: { type: 'string' },
    startupProbe: probe,
    readinessProbe: probe,
    livenessProbe: probe,
    logLevel: { enum: [...LOG_LEVELS] },
    env: {
      type: 'array',
      items: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 } } }
    },
    securityContext: { type: 'object' },
    prometheusAnnotations: { type: 'boolean' }
  }
} as const

const validate = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(CONFIG_SCHEMA)

/** Validates a parsed config document and merges it over the defaults. */
export function resolveInjectionConfig (doc: unknown, source = '(inline)'): InjectionConfig {
  if (doc === null || doc === undefined) return DEFAULT_CONFIG
  if (!validate(doc)) {
    const detail = (validate.errors ?? []).map(e => `${e.instancePath === '' ? '(top level)' : e.instancePath} ${e.message ?? 'is invalid'}${e.keyword === 'additionalProperties' ? ` '${String(e.params.additionalProperty)}'` : ''}`).join('; ')
    throw errors.INVALID_CONFIG(source, detail)
  }
  const given = doc as JsonObject
  const config = merge(structuredClone(DEFAULT_CONFIG) as unknown as Json, { ...given, modelVolume: null }) as unknown as InjectionConfig
  config.modelVolume = isObject(given.modelVolume)
    ? { name: DEFAULT_CONFIG.modelVolume.name, ...given.modelVolume }
    : DEFAULT_CONFIG.modelVolume
  if (Object.keys(config.modelVolume).length !== 2) throw errors.INVALID_CONFIG(source, '/modelVolume needs exactly one volume source (for example persistentVolumeClaim, nfs, hostPath, csi or image)')
  for (const [a, b] of [['inference', 'grpc'], ['inference', 'metrics'], ['grpc', 'metrics']] as const) {
    if (config.ports[a] === config.ports[b]) throw errors.INVALID_CONFIG(source, `/ports: ${a} and ${b} are both ${config.ports[a]}`)
  }
  for (const kind of ['requests', 'limits'] as const) {
    for (const [name, value] of Object.entries(config.resources[kind])) {
      config.resources[kind][name] = String(value)
      // cpu and memory have the floors the annotations have (common/contract.ts); other resources need only be quantities
      const check = name === 'cpu' ? parseCpu : name === 'memory' ? parseMemory : parseQuantity
      try {
        check(String(value))
      } catch (err) {
        throw errors.INVALID_CONFIG(source, `/resources/${kind}/${name}: ${JSON.stringify(String(value))} ${(err as Error).message}`)
      }
    }
  }
  for (const name of ['cpu', 'memory']) {
    const request = config.resources.requests[name]
    const limit = config.resources.limits[name]
    if (request !== undefined && limit !== undefined && parseQuantity(request).value > parseQuantity(limit).value) {
      throw errors.INVALID_CONFIG(source, `/resources: the ${name} request ${request} is above the ${name} limit ${limit}`)
    }
  }
  const memoryLimit = config.resources.limits.memory
  if (memoryLimit !== undefined) {
    try {
      planParallelism(1, memoryBudgetFor({ budget: parseQuantity(memoryLimit).value })) // one worker and its request memory fit (common/contract.ts)
    } catch (err) {
      throw errors.INVALID_CONFIG(source, `/resources/limits/memory: ${JSON.stringify(memoryLimit)} ${(err as Error).message}`)
    }
  }
  try {
    parseQuantity(config.tmpSizeLimit)
  } catch (err) {
    throw errors.INVALID_CONFIG(source, `/tmpSizeLimit: ${JSON.stringify(config.tmpSizeLimit)} ${(err as Error).message}`)
  }
  return config
}

export function parseInjectionConfig (text: string, source = '(inline)'): InjectionConfig {
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    throw errors.INVALID_CONFIG(source, `not YAML or JSON: ${(err as Error).message.split('\n')[0] ?? ''}`)
  }
  return resolveInjectionConfig(doc, source)
}

/** Reads a config file; without one, the built-in defaults. */
export function loadInjectionConfig (file: string | undefined): InjectionConfig {
  if (file === undefined || file === '') return DEFAULT_CONFIG
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw errors.INVALID_CONFIG(file, (err as Error).message)
  }
  return parseInjectionConfig(text, file)
}
