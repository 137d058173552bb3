/**
 * `<model>/config.yaml`: parsed with `yaml`, validated with an ajv JSON schema, and
 * turned into a fully defaulted `ModelConfig`. Every problem names the file and the key.
 */
import { Ajv, type ErrorObject } from 'ajv'
import { parse as parseYaml } from 'yaml'
import { ModelLoadError } from '../core/errors.js'
import type { ModelConfig, Normalizer, RolloutConfig, VersionPolicy } from './config-types.js'
import { parseRollout, ROLLOUT_SCHEMA, rolloutVersions, type RawRollout } from './rollout-config.js'

export const DEFAULTS = {
  maxQueueDelayMicros: 0, // 0 µs: batch only what queues up while the worker is busy
  maxQueueSize: 1024, // requests per model version; beyond it 503 + Retry-After
  versionPolicy: { latest: 1 } as VersionPolicy,
  warmup: true
}

const numberArray = { type: 'array', items: { type: 'number' }, minItems: 1 }
const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max_batch_size: { type: 'integer', minimum: 0, maximum: 65536 },
    dynamic_batching: {
      type: 'object',
      additionalProperties: false,
      properties: {
        max_queue_delay_microseconds: { type: 'integer', minimum: 0, maximum: 10_000_000 },
        max_queue_size: { type: 'integer', minimum: 1, maximum: 1_000_000 }
      }
    },
    version_policy: {
      type: 'object',
      minProperties: 1,
      maxProperties: 1,
      additionalProperties: false,
      properties: {
        latest: { type: 'integer', minimum: 1 },
        all: { type: 'object', additionalProperties: false },
        specific: { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 1 }
      }
    },
    preprocess: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        minProperties: 1,
        maxProperties: 1,
        additionalProperties: false,
        properties: {
          minmax: {
            type: 'object',
            additionalProperties: false,
            required: ['min', 'max'],
            properties: { min: numberArray, max: numberArray }
          },
          zscore: {
            type: 'object',
            additionalProperties: false,
            required: ['mean', 'std'],
            properties: { mean: numberArray, std: numberArray }
          }
        }
      }
    },
    warmup: { type: 'boolean' },
    rollout: ROLLOUT_SCHEMA
  }
} as const

// Compiled on first use: the sidecar should not pay for it before a model loads.
let validator: ReturnType<Ajv['compile']> | undefined
function validate (doc: unknown): boolean {
  validator ??= new Ajv({ allErrors: false, strict: true }).compile(schema)
  return validator(doc) as boolean
}

function keyOf (err: ErrorObject): string {
  const path = err.instancePath.split('/').slice(1).map(p => p.replace(/~1/g, '/').replace(/~0/g, '~'))
  if (err.keyword === 'additionalProperties') path.push(String(err.params.additionalProperty))
  if (err.keyword === 'required') path.push(String(err.params.missingProperty))
  return path.length === 0 ? '(top level)' : path.map(p => (/^\d+$/.test(p) ? `[${p}]` : p)).join('.').replace(/\.\[/g, '[')
}

function describe (err: ErrorObject): string {
  switch (err.keyword) {
    case 'additionalProperties': return 'is not a known key'
    case 'required': return 'is required'
    case 'minProperties':
    case 'maxProperties': return 'must have exactly one key'
    case 'enum': return `must be one of: ${(err.params.allowedValues as unknown[]).join(', ')}`
    default: return err.message ?? 'is invalid'
  }
}

/** Parses and validates a config.yaml text. `file` is used in messages only. */
export function parseModelConfig (text: string | undefined, file: string): ModelConfig {
  let doc: unknown = {}
  if (text !== undefined) {
    try {
      doc = parseYaml(text) ?? {}
    } catch (err) {
      throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`)
    }
  }
  if (!validate(doc)) {
    const err = (validator?.errors as ErrorObject[])[0] as ErrorObject
    throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${file}: key '${keyOf(err)}' ${describe(err)}`)
  }
  const raw = doc as {
    max_batch_size?: number
    dynamic_batching?: { max_queue_delay_microseconds?: number, max_queue_size?: number }
    version_policy?: VersionPolicy
    preprocess?: Record<string, { minmax?: { min: number[], max: number[] }, zscore?: { mean: number[], std: number[] } }>
    warmup?: boolean
    rollout?: RawRollout
  }

  const preprocess = new Map<string, Normalizer>()
  for (const [input, spec] of Object.entries(raw.preprocess ?? {})) {
    const where = `${file}: key 'preprocess.${input}`
    if (spec.minmax !== undefined) {
      const { min, max } = spec.minmax
      if (min.length !== max.length) throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${where}.minmax': min has ${min.length} values but max has ${max.length}`)
      const bad = min.findIndex((m, i) => !((max[i] as number) > m))
      if (bad !== -1) throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${where}.minmax': max[${bad}] must be greater than min[${bad}]`)
      preprocess.set(input, { kind: 'minmax', min, max })
    } else {
      const { mean, std } = spec.zscore as { mean: number[], std: number[] }
      if (mean.length !== std.length) throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${where}.zscore': mean has ${mean.length} values but std has ${std.length}`)
      const bad = std.findIndex(s => !(s > 0))
      if (bad !== -1) throw new ModelLoadError('OS_ERR_MODEL_CONFIG', `${where}.zscore': std[${bad}] must be greater than 0`)
      preprocess.set(input, { kind: 'zscore', mean, std })
    }
  }

  return {
    maxBatchSize: raw.max_batch_size,
    maxQueueDelayMicros: raw.dynamic_batching?.max_queue_delay_microseconds ?? DEFAULTS.maxQueueDelayMicros,
    maxQueueSize: raw.dynamic_batching?.max_queue_size ?? DEFAULTS.maxQueueSize,
    versionPolicy: raw.version_policy ?? DEFAULTS.versionPolicy,
    preprocess,
    warmup: raw.warmup ?? DEFAULTS.warmup,
    rollout: parseRollout(raw.rollout, file)
  }
}

/**
 * Which of the available versions the policy serves, highest first; a rollout's live and
 * candidate versions are served as well, whatever the policy says.
 */
export function selectVersions (policy: VersionPolicy, available: readonly number[], rollout?: RolloutConfig): number[] {
  const sorted = [...available].sort((a, b) => b - a)
  let picked: number[]
  if ('latest' in policy) picked = sorted.slice(0, policy.latest)
  else if ('specific' in policy) picked = sorted.filter(v => policy.specific.includes(v))
  else picked = sorted
  const extra = rolloutVersions(rollout).filter(v => available.includes(v) && !picked.includes(v))
  return extra.length === 0 ? picked : [...picked, ...extra].sort((a, b) => b - a)
}
