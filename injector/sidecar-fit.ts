/**
 * The injector admits only sidecars that fit their pod. The sidecar's resources come from
 * the injection config, the annotations and the pod's own `onnx-sidecar` container
 * (overrides, merged last); its memory budget, request memory and explicit workers from
 * `ONNX_SIDECAR_*` variables and the override's args. All of it goes through the contract
 * `serve` applies (common/contract.ts): the args and variables parse with `serve`'s own
 * option table, and `planParallelism` derives the workers from the CPU limit and the
 * memory, or checks the explicit ones. A value that does not fit denies the pod with a
 * message naming where it came from: the annotation, or the override's field.
 */
import { ANNOTATIONS, type PodAnnotations } from './annotations.js'
import { errors, type InjectorError } from './errors.js'
import { isObject, merge, type Json, type JsonObject } from './merge.js'
import type { InjectionConfig } from './injection-config.js'
import { ConfigError, readConfig } from '../common/config.js'
import { FitError, clampedWorkers, memoryBudgetFor, parseCpu, parseMemory, parseQuantity, planParallelism, type FitSubject } from '../common/contract.js'
import { serveOptions } from '../common/serve-options.js'

const CONTAINER = 'onnx-sidecar'

/** Where a value came from, to name it in a denial or a warning. */
type Source =
  | { kind: 'annotation', key: string, value: string }
  | { kind: 'override', field: string, value: string }
  | { kind: 'config', field: string, value: string }

export interface SidecarFit {
  requests: Record<string, string>
  limits: Record<string, string>
  /** CPUs the sidecar may use: its CPU limit, else request, else 1, rounded up. */
  cpus: number
  workers: number
  threads: number
  warnings: string[]
}

function deny (source: Source, detail: string): InjectorError {
  switch (source.kind) {
    case 'annotation': return errors.INVALID_ANNOTATION(source.key, source.value, detail)
    case 'override': return errors.INVALID_OVERRIDE(source.field, source.value, detail)
    case 'config': return errors.INVALID_POD(`the injection config's ${source.field}: ${JSON.stringify(source.value)} ${detail}`)
  }
}

function describe (source: Source): string {
  switch (source.kind) {
    case 'annotation': return `${source.key}: ${JSON.stringify(source.value)}`
    case 'override': return `container ${CONTAINER} ${source.field}: ${JSON.stringify(source.value)}`
    case 'config': return `the injection config's ${source.field}: ${JSON.stringify(source.value)}`
  }
}

/** The override's `resources.requests` / `resources.limits` cpu and memory, each checked as the annotations are. */
function overrideResources (override: JsonObject | undefined): { requests: Record<string, string>, limits: Record<string, string> } {
  const out = { requests: {} as Record<string, string>, limits: {} as Record<string, string> }
  const resources = override?.resources
  if (!isObject(resources)) return out
  for (const kind of ['requests', 'limits'] as const) {
    const list = resources[kind]
    if (!isObject(list)) continue
    for (const [name, check] of [['cpu', parseCpu], ['memory', parseMemory]] as const) {
      const value = list[name]
      if (value === undefined) continue
      const field = `resources.${kind}.${name}`
      if (typeof value !== 'string' && typeof value !== 'number') throw errors.INVALID_OVERRIDE(field, JSON.stringify(value), 'is not a quantity')
      try {
        out[kind][name] = check(String(value)).text
      } catch (err) {
        throw errors.INVALID_OVERRIDE(field, String(value), (err as Error).message)
      }
    }
  }
  return out
}

/** The literal values of the sidecar's environment (the config's, then the override's by name); `valueFrom` entries are unknown here. */
function literalEnv (config: InjectionConfig, override: JsonObject | undefined): Record<string, string> {
  const list = merge(config.env as Json[], override?.env, 'env')
  const env: Record<string, string> = {}
  if (!Array.isArray(list)) return env
  for (const e of list) if (isObject(e) && typeof e.name === 'string' && typeof e.value === 'string') env[e.name] = e.value
  return env
}

/** `serve`'s options from the override's args (when it replaces them) and the environment, parsed by `serve`'s own table. */
function serveSees (override: JsonObject | undefined, env: Record<string, string>) {
  const args = override?.args
  let argv: string[] = []
  if (args !== undefined) {
    if (!Array.isArray(args) || !args.every(a => typeof a === 'string')) throw errors.INVALID_OVERRIDE('args', JSON.stringify(args), 'is not a list of strings')
    argv = args
  }
  try {
    return { opts: readConfig(serveOptions(), argv, env), argv }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    const byEnv = /^environment variable (\S+): (.*)$/s.exec(err.message)
    if (byEnv !== null) {
      const name = byEnv[1] as string
      const value = env[name] ?? ''
      const detail = (byEnv[2] as string).replace(`'${value}' `, '')
      throw errors.INVALID_OVERRIDE(`env ${name}`, value, `${detail} (serve would refuse it)`)
    }
    throw errors.INVALID_OVERRIDE('args', argv.join(' '), `${err.message.replace(/^flag (\S+): /, '$1: ')} (serve would refuse them)`)
  }
}

/** Where `serve` takes an option from: a flag in the override's args, else its variable. */
function optionSource (argv: string[], flag: string, env: string, envValues: Record<string, string>): Source {
  const at = argv.findIndex(a => a === flag || a.startsWith(`${flag}=`))
  if (at !== -1) {
    const arg = argv[at] as string
    return { kind: 'override', field: `args ${flag}`, value: arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[at + 1] ?? '' }
  }
  return { kind: 'override', field: `env ${env}`, value: envValues[env] ?? '' }
}

/**
 * Resolves and checks the sidecar's resources, workers and threads. `requests` and
 * `limits` are the config's with the annotations applied; `override` is the pod's
 * `onnx-sidecar` container, if any. Throws the denial; returns what to write and the warnings.
 */
export function fitSidecar (base: { requests: Record<string, string>, limits: Record<string, string> }, values: PodAnnotations, config: InjectionConfig, override: JsonObject | undefined): SidecarFit {
  const own = overrideResources(override)
  const requests = { ...base.requests, ...own.requests }
  const limits = { ...base.limits, ...own.limits }
  const resourceSource = (kind: 'requests' | 'limits', name: 'cpu' | 'memory'): Source => {
    const fromOverride = own[kind][name]
    if (fromOverride !== undefined) return { kind: 'override', field: `resources.${kind}.${name}`, value: fromOverride }
    const annotation = kind === 'requests' ? ANNOTATIONS[name] : ANNOTATIONS[name === 'cpu' ? 'cpuLimit' : 'memoryLimit']
    const given = values[kind === 'requests' ? name : name === 'cpu' ? 'cpuLimit' : 'memoryLimit']
    if (given !== undefined) return { kind: 'annotation', key: annotation.key, value: given.text }
    return { kind: 'config', field: `resources.${kind}.${name}`, value: (kind === 'requests' ? requests : limits)[name] ?? '' }
  }
  for (const name of ['cpu', 'memory'] as const) {
    const r = requests[name]
    const l = limits[name]
    if (own.requests[name] === undefined && own.limits[name] === undefined) continue // the annotations' and config's were checked already
    if (r !== undefined && l !== undefined && parseQuantity(r).value > parseQuantity(l).value) {
      throw own.requests[name] !== undefined
        ? deny(resourceSource('requests', name), `is above the ${name} limit ${l}`)
        : deny(resourceSource('limits', name), `is below the ${name} request ${r}`)
    }
  }

  const env = literalEnv(config, override)
  const { opts, argv } = serveSees(override, env)
  const containerLimit = limits.memory === undefined ? undefined : parseQuantity(limits.memory).value
  const budgetSource: Source = opts.memoryLimit > 0 ? optionSource(argv, '--memory-limit', 'ONNX_SIDECAR_MEMORY_LIMIT', env) : resourceSource('limits', 'memory')
  if (opts.memoryLimit > 0 && containerLimit !== undefined && opts.memoryLimit > Math.ceil(containerLimit)) {
    throw deny(budgetSource, `is above the container's memory limit ${String(limits.memory)}: the sidecar would size itself for memory it cannot use`)
  }
  const memory = memoryBudgetFor({ budget: opts.memoryLimit > 0 ? opts.memoryLimit : containerLimit, requestMemory: opts.requestMemory, bodyLimit: opts.bodyLimit })
  const cores = limits.cpu ?? requests.cpu
  const cpus = cores === undefined ? 1 : Math.max(1, Math.ceil(parseQuantity(cores).value))
  const threadsAsked = values.threads
  let plan
  try {
    plan = planParallelism(cpus, memory, { workers: opts.workers, threads: threadsAsked ?? opts.threads })
  } catch (err) {
    if (!(err instanceof FitError)) throw err
    throw deny(blameFor(err.subject, { argv, env, budgetSource, memory, containerLimit, bodyLimitGiven: opts.bodyLimit > 0 }), err.message)
  }
  const warnings: string[] = []
  const clamped = clampedWorkers(plan, cpus)
  if (clamped !== undefined) {
    const cpuSource = limits.cpu !== undefined ? resourceSource('limits', 'cpu') : resourceSource('requests', 'cpu')
    warnings.push(`${describe(cpuSource)}: ${clamped}`)
  }
  return { requests, limits, cpus, workers: plan.workers, threads: plan.threads, warnings }
}

function blameFor (subject: FitSubject, c: { argv: string[], env: Record<string, string>, budgetSource: Source, memory: { requestMemoryGiven: boolean }, containerLimit: number | undefined, bodyLimitGiven: boolean }): Source {
  switch (subject) {
    case 'workers': return optionSource(c.argv, '--workers', 'ONNX_SIDECAR_WORKERS', c.env)
    case 'bodyLimit': return c.bodyLimitGiven ? optionSource(c.argv, '--body-limit', 'ONNX_SIDECAR_BODY_LIMIT', c.env) : optionSource(c.argv, '--request-memory', 'ONNX_SIDECAR_REQUEST_MEMORY', c.env)
    case 'budget':
      // the memory limit is too small, unless it is the config's (or none) and the pod asked for more request memory
      if (c.memory.requestMemoryGiven && (c.budgetSource.kind === 'config' || c.containerLimit === undefined)) return optionSource(c.argv, '--request-memory', 'ONNX_SIDECAR_REQUEST_MEMORY', c.env)
      return c.budgetSource
  }
}
