/**
 * The contract between the injector and `serve`: the rules for every value the injector
 * writes into the sidecar's arguments and both sides check. The injector parses pod
 * annotations with these functions, and `serve` parses its flags with the same ones, so a
 * pod the injector admits never has a sidecar that refuses its own arguments.
 *
 * Parsers throw an Error whose message is a predicate about the value ("is not a port
 * number (1-65535)"): an annotation error reads `annotation KEY: "VALUE" <message>`;
 * `asOption` turns a parser into a `serve` option parser that puts the value first.
 */
import { defaultParallelism } from './cpu.js'
import { DEFAULT_MEMORY_BUDGET, requestLimits } from './memory-limit.js'

/** Model directory names: what Triton allows, minus anything that could escape the repository. */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
const MODEL_NAME_RULE = 'letters, digits, \'.\', \'_\' and \'-\', starting with a letter or digit, at most 128 characters'
/** Version directory names: a positive integer without leading zeros. */
export const MODEL_VERSION = /^[1-9]\d{0,8}$/

export interface ModelRef {
  name: string
  /** Pinned version; undefined follows the model's version policy. */
  version?: number
}

export interface Range { min: number, max: number }
export const PORTS: Range = { min: 1, max: 65535 }
/** ONNX Runtime intra-op threads per worker (`--threads`, `onnx-sidecar.io/threads`). */
export const THREADS: Range = { min: 1, max: 256 }
/** Inference worker threads (`--workers`); the injector derives them from the CPU limit. */
export const WORKERS: Range = { min: 1, max: 64 }

const MiB = 2 ** 20
/**
 * The least the sidecar runs in, for requests and limits alike (annotations and the
 * injection config). Memory: right after start-up with one worker and a small model
 * (iris) `serve` holds about 120 MiB resident, so a smaller limit kills it before it
 * serves and a smaller request reserves less than it uses on any node. CPU: start-up
 * alone takes about 0.6 CPU-seconds, about 12 s at 50m; below that start-up and every
 * garbage-collection pause stretch towards the probes' timeouts.
 */
export const MIN_MEMORY = { text: '128Mi', value: 128 * MiB }
export const MIN_CPU = { text: '50m', value: 0.05 }

/**
 * `name[:version],...` (`--model`, `onnx-sidecar.io/model`). Blank is the empty list
 * (`serve`: every model in the repository). One entry per model: the model manager serves
 * a model either at its pinned version or by its version policy, so several versions of
 * one model come from `version_policy: { specific: [...] }` in its config.yaml.
 */
/** Models one sidecar may serve (each is a session in every worker); also bounds the work of checking a list. */
export const MAX_MODELS = 256

export function parseModelList (raw: string): ModelRef[] {
  if (raw.trim() === '') return []
  const out: ModelRef[] = []
  const byName = new Map<string, ModelRef>()
  const parts = raw.split(',')
  if (parts.length > MAX_MODELS) throw new Error(`lists ${parts.length} models; one sidecar serves at most ${MAX_MODELS}`)
  for (const part of parts.map(s => s.trim())) {
    if (part === '') throw new Error('is not a model list: it has an empty entry (expected name[:version][,...])')
    const [name = '', version, ...rest] = part.split(':')
    if (rest.length > 0) throw new Error(`is not a model list: '${part}' (expected name[:version][,...])`)
    if (!MODEL_NAME.test(name)) throw new Error(`is not a model list: '${name}' is not a model name (${MODEL_NAME_RULE})`)
    if (version !== undefined && !MODEL_VERSION.test(version)) throw new Error(`is not a model list: version '${version}' of '${name}' is not a positive integer`)
    const ref: ModelRef = version === undefined ? { name } : { name, version: Number(version) }
    const earlier = byName.get(name)
    if (earlier !== undefined) throw new Error(listedTwice(earlier, ref))
    byName.set(name, ref)
    out.push(ref)
  }
  return out
}

function listedTwice (a: ModelRef, b: ModelRef): string {
  const versions = [a.version, b.version].filter((v): v is number => v !== undefined)
  const policy = `version_policy: { specific: [${(versions.length === 2 && versions[0] !== versions[1] ? versions.sort((x, y) => x - y) : [1, 2]).join(', ')}] }`
  return `lists model '${a.name}' twice ('${formatModelList([a])}' and '${formatModelList([b])}'): a model is served at one pinned version or by its version policy; ` +
    `to serve several versions, list '${a.name}' once without a version and put ${policy} in ${a.name}/config.yaml`
}

export function formatModelList (models: readonly ModelRef[]): string {
  return models.map(m => m.version === undefined ? m.name : `${m.name}:${m.version}`).join(',')
}

/** A rollout's candidate (`--candidate`, `onnx-sidecar.io/candidate`): a version, or `model:version`. */
export interface CandidateRef {
  /** undefined: the pod's one model. */
  model?: string
  version: number
}

/** Percent of requests a fleet canary's candidate answers (`--canary`, `onnx-sidecar.io/canary`). */
export const CANARY_PERCENT: Range = { min: 1, max: 50 }

export function parseCandidate (raw: string): CandidateRef {
  const text = raw.trim()
  const [a = '', b, ...rest] = text.split(':')
  const name = b === undefined ? undefined : a
  const version = b ?? a
  if (rest.length > 0 || (name !== undefined && !MODEL_NAME.test(name)) || !MODEL_VERSION.test(version)) {
    throw new Error('is not a candidate version (a version such as 2, or model:version such as ads:2)')
  }
  return name === undefined ? { version: Number(version) } : { model: name, version: Number(version) }
}

export function parseCanary (raw: string): number {
  const n = integerIn(raw, CANARY_PERCENT)
  if (n === undefined) throw new Error(`is not a canary percent (an integer from ${CANARY_PERCENT.min} to ${CANARY_PERCENT.max})`)
  return n
}

/** A rollout that the fleet decides: the model, its candidate version, and the canary percent (undefined: shadow). */
export interface FleetCandidate {
  model: string
  version: number
  canary: number | undefined
}

/** Why a candidate or canary cannot run: `subject` is the one at fault, `predicate` completes "KEY VALUE ..." (the annotation error's form). */
export class FleetError extends Error {
  readonly subject: 'candidate' | 'canary'
  readonly predicate: string

  constructor (subject: 'candidate' | 'canary', predicate: string, message: string) {
    super(message)
    this.subject = subject
    this.predicate = predicate
  }
}

/**
 * The fleet rollout that a candidate and a canary percent ask for, checked against the
 * models the pod serves; undefined without either. `names` are what the user wrote (flags
 * or annotations), for the messages. Throws a FleetError whose message names them.
 */
export function fleetCandidate (models: readonly ModelRef[], candidate: CandidateRef | undefined, canary: number | undefined, names: { model: string, candidate: string, canary: string }): FleetCandidate | undefined {
  if (candidate === undefined) {
    if (canary === undefined) return undefined
    const predicate = `needs ${names.candidate}: a canary of which version?`
    throw new FleetError('canary', predicate, `${names.canary} ${predicate}`)
  }
  const text = `${names.candidate} '${candidate.model === undefined ? '' : `${candidate.model}:`}${candidate.version}'`
  const fail = (predicate: string): never => { throw new FleetError('candidate', predicate, `${text} ${predicate}`) }
  let model = candidate.model
  if (model === undefined) {
    if (models.length !== 1) fail(`must name its model (model:version): ${names.model} ${models.length === 0 ? 'names no model, so every model is served' : `lists ${models.length} models`}`)
    model = (models[0] as ModelRef).name
  }
  const served = models.find(m => m.name === model)
  if (models.length > 0 && served === undefined) fail(`names model '${model}', which the pod does not serve (${names.model}: ${formatModelList(models)})`)
  if (served?.version === candidate.version) fail(`is the version ${names.model} pins as live ('${formatModelList([served])}'); the candidate must be another version`)
  return { model, version: candidate.version, canary }
}

function integerIn (raw: string, range: Range): number | undefined {
  const text = raw.trim()
  if (!/^\d{1,6}$/.test(text)) return undefined
  const n = Number(text)
  return n >= range.min && n <= range.max ? n : undefined
}

export function parsePort (raw: string): number {
  const n = integerIn(raw, PORTS)
  if (n === undefined) throw new Error(`is not a port number (${PORTS.min}-${PORTS.max})`)
  return n
}

export function parseThreads (raw: string): number {
  const n = integerIn(raw, THREADS)
  if (n === undefined) throw new Error(`is not a thread count (an integer from ${THREADS.min} to ${THREADS.max})`)
  return n
}

export function parseWorkers (raw: string): number {
  const n = integerIn(raw, WORKERS)
  if (n === undefined) throw new Error(`is not a worker count (an integer from ${WORKERS.min} to ${WORKERS.max})`)
  return n
}

/**
 * What the sidecar costs in memory, measured: idle RSS (`VmRSS` in /proc/PID/status once
 * /v2/health/ready answers) of `node dist/cli/main.js serve --model iris --workers N
 * --threads 1` on the host (Node 20, 2 CPUs, two runs each):
 *
 *   workers   1     2     4     8     16    32
 *   MiB       121   132   157   203   293   424-471
 *
 * A least-squares line through 1-16 workers: a fixed base of 109.5 MiB (main thread and
 * V8 heap, metrics thread, gRPC, ONNX Runtime's libraries) and 11.5 MiB per worker (11.7
 * over 1-8, 10.5 over 1-32). Intra-op threads cost nothing measurable idle (8 workers x 8
 * threads: 204 MiB, as with 1 thread), so only workers enter the rule. Serving digits
 * too adds 0.3 MiB per worker; a real model adds its weights on top (docs/performance.md).
 * The rule rounds up: 110 MiB base, 12 MiB per worker.
 */
export const BASE_MEMORY = 110 * MiB
export const WORKER_MEMORY = 12 * MiB
/**
 * The most workers derived from the CPU limit. Every request is read, parsed and answered
 * by the one main thread, whatever the workers, so past 16 workers (32 CPUs) more workers
 * add 12 MiB each and no throughput the main thread can feed; CPUs beyond that go to
 * intra-op threads, which cost no memory idle. 16 workers idle at about 293 MiB, which
 * leaves room in the default 512Mi limit for its 128 MiB request memory. An explicit
 * `--workers` may go up to `WORKERS.max` when the memory limit holds them.
 */
export const DERIVED_WORKERS_MAX = 16

/** What `serve` sizes from its memory budget: the budget and the request memory beside the fixed cost. */
export interface MemoryBudget {
  /** Bytes: `--memory-limit`, else the container's memory limit, else 512 MiB (common/memory-limit.ts). */
  budget: number
  /** Bytes requests may hold at once: `--request-memory`, else a quarter of the budget. */
  requestMemory: number
  /** Largest request body: `--body-limit`, else 1/32 of the budget. */
  bodyLimit: number
  /** True when `requestMemory` was given, not derived from the budget. */
  requestMemoryGiven: boolean
}

/** The budget `serve` works with, from what it is given (0 or undefined: derived, as `serve` derives it). */
export function memoryBudgetFor (given: { budget?: number, requestMemory?: number, bodyLimit?: number }): MemoryBudget {
  const budget = given.budget !== undefined && given.budget > 0 ? given.budget : DEFAULT_MEMORY_BUDGET
  const derived = requestLimits(budget)
  return {
    budget,
    requestMemory: given.requestMemory !== undefined && given.requestMemory > 0 ? given.requestMemory : derived.requestBytes,
    bodyLimit: given.bodyLimit !== undefined && given.bodyLimit > 0 ? given.bodyLimit : derived.bodyLimit,
    requestMemoryGiven: given.requestMemory !== undefined && given.requestMemory > 0
  }
}

/** Workers whose idle cost, beside the fixed base and the request memory, fits the budget (may be 0 or less). */
export function workersThatFit (m: MemoryBudget): number {
  return Math.floor((m.budget - BASE_MEMORY - m.requestMemory) / WORKER_MEMORY)
}

const mib = (bytes: number): string => `${Math.round(bytes / MiB)} MiB`

/**
 * The smallest memory limit with room for one worker and the request memory: with the
 * derived request memory (a quarter of the budget) 163Mi; with an explicit one, base +
 * one worker + that.
 */
export function leastMemoryLimit (m?: MemoryBudget): string {
  const bytes = m?.requestMemoryGiven === true
    ? BASE_MEMORY + WORKER_MEMORY + m.requestMemory
    : (BASE_MEMORY + WORKER_MEMORY) * 4 / 3
  return `${Math.ceil(bytes / MiB)}Mi`
}

/** Which value of a plan does not fit: the budget (the memory limit), the explicit workers, or the body limit. */
export type FitSubject = 'budget' | 'workers' | 'bodyLimit'

/** A plan that does not fit; the message completes "<where> "<value>" ...". */
export class FitError extends Error {
  constructor (readonly subject: FitSubject, message: string) {
    super(message)
    this.name = 'FitError'
  }
}

export interface Parallelism {
  workers: number
  threads: number
  /** The workers the CPU rule alone gives. */
  fromCpu: number
  /** Why fewer workers than `fromCpu` (derived workers only). */
  limitedBy?: 'memory' | 'cap'
  /** At most this many workers fit the memory budget. */
  fit: number
}

/**
 * Workers and threads for a sidecar that may use `cpus` CPUs within memory budget `m`: the
 * one rule the injector and `serve` share. Derived workers are the least of CPUs / 2,
 * what fits the memory (`workersThatFit`) and `DERIVED_WORKERS_MAX`, at least 1; threads
 * get the CPUs the workers leave ((CPUs - 1) / workers, at most `THREADS.max`). Explicit
 * workers and threads are kept. Throws a `FitError` when not even one worker (or not the
 * explicit workers) fits beside the request memory, or when the request memory does not
 * hold two bodies of the largest size (`serve` refuses that).
 */
export function planParallelism (cpus: number, m: MemoryBudget, explicit: { workers?: number, threads?: number } = {}): Parallelism {
  if (m.requestMemory < 2 * m.bodyLimit) {
    throw new FitError('bodyLimit', `is more than half the request memory (${m.requestMemory} bytes): a body of the largest allowed size, and the tensors decoded from it, must fit twice`)
  }
  const fit = workersThatFit(m)
  const fromCpu = Math.max(WORKERS.min, Math.floor(cpus / 2))
  if (fit < 1) {
    throw new FitError('budget', `leaves ${mib(Math.max(0, m.budget - BASE_MEMORY - WORKER_MEMORY))} beside the sidecar's fixed cost (${mib(BASE_MEMORY)} plus ${mib(WORKER_MEMORY)} for one worker), less than its request memory of ${mib(m.requestMemory)}${m.requestMemoryGiven ? '' : ' (a quarter of the limit)'}; write ${leastMemoryLimit(m)} or more`)
  }
  let workers: number
  let limitedBy: Parallelism['limitedBy']
  if (explicit.workers !== undefined && explicit.workers > 0) {
    workers = explicit.workers
    if (workers > fit) {
      throw new FitError('workers', `is more workers than fit: they hold ${mib(BASE_MEMORY + workers * WORKER_MEMORY)} idle (${mib(BASE_MEMORY)} plus ${mib(WORKER_MEMORY)} each), and with the request memory of ${mib(m.requestMemory)} that is more than the memory budget of ${mib(m.budget)}; at most ${fit} fit`)
    }
  } else {
    workers = Math.min(fromCpu, fit, DERIVED_WORKERS_MAX)
    if (workers < fromCpu) limitedBy = fit < DERIVED_WORKERS_MAX ? 'memory' : 'cap'
  }
  const threads = explicit.threads !== undefined && explicit.threads > 0 ? explicit.threads : Math.min(THREADS.max, defaultParallelism(cpus, workers).threads)
  return { workers, threads, fromCpu, fit, ...(limitedBy === undefined ? {} : { limitedBy }) }
}

/** Why a derived worker count is below the CPU rule's, for a warning; undefined when it is not. */
export function clampedWorkers (p: Parallelism, cpus: number): string | undefined {
  if (p.limitedBy === undefined) return undefined
  const why = p.limitedBy === 'cap'
    ? `${DERIVED_WORKERS_MAX} is the most derived (one main thread feeds them all; an explicit worker count may go higher)`
    : `${p.workers} is what the memory budget holds (${mib(BASE_MEMORY)} plus ${mib(WORKER_MEMORY)} per worker, beside the request memory)`
  return `${cpus} CPUs would give ${p.fromCpu} workers; ${why}, so ${p.workers} workers x ${p.threads} threads`
}

/**
 * Workers and threads for a sidecar that may use `cpus` CPUs and the default 512 MiB
 * budget (`planParallelism` with `memoryBudgetFor({})`).
 */
export function parallelismFor (cpus: number): { workers: number, threads: number } {
  const { workers, threads } = planParallelism(cpus, memoryBudgetFor({}))
  return { workers, threads }
}

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
  const scale = SUFFIX[suffix] ?? 10 ** Number(suffix.slice(1)) // E is exa; e3 and E3 are exponents
  const value = Number(m[1]) * scale
  if (!(value > 0) || !Number.isFinite(value)) throw new Error('must be a quantity greater than zero')
  return { text, value }
}

/** The byte sizes `serve` has always taken (`1048576`, `512kb`, `64mb`, `1gib`): binary units, any case. */
const LEGACY_SIZE = /^(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?$/i
const LEGACY_UNIT: Record<string, number> = { b: 1, kb: 2 ** 10, kib: 2 ** 10, mb: 2 ** 20, mib: 2 ** 20, gb: 2 ** 30, gib: 2 ** 30 }

/**
 * A byte size (`--memory-limit`, `--body-limit`, `--request-memory` and their variables):
 * what `serve` took before (`1048576`, `512kb`, `64mb`: binary units, any case), or a
 * Kubernetes quantity as a pod's resources write it (`512Mi`, `0.5Gi`, `256M`, `1e3`;
 * `M` and `k` are decimal there: `256M` is 256,000,000 bytes), rounded up to whole bytes
 * as Kubernetes rounds a memory limit.
 */
export function parseByteSize (raw: string): number {
  const text = raw.trim()
  const legacy = LEGACY_SIZE.exec(text)
  if (legacy !== null) return Number(legacy[1]) * (LEGACY_UNIT[(legacy[2] ?? 'b').toLowerCase()] as number)
  const m = QUANTITY.exec(text)
  const value = m === null ? NaN : Number(m[1]) * (SUFFIX[m[2] ?? ''] ?? 10 ** Number((m[2] ?? '').slice(1)))
  if (!Number.isFinite(value) || value > Number.MAX_SAFE_INTEGER) throw new Error('is not a size (examples: 512Mi, 0.5Gi, 256M, 64mb, 1048576)')
  if (value < 1) throw new Error('is less than one byte (the suffix m is milli: write Mi for mebibytes)')
  return Math.ceil(value)
}

/** A CPU request or limit for the sidecar: a quantity of at least `MIN_CPU`. */
export function parseCpu (raw: string): Quantity {
  const q = parseQuantity(raw)
  if (q.value < MIN_CPU.value) throw new Error(`is below ${MIN_CPU.text}, the least CPU the sidecar runs on (write ${MIN_CPU.text} or more; 1 is one core)`)
  return q
}

/** A memory request or limit for the sidecar: a quantity of at least `MIN_MEMORY`. */
export function parseMemory (raw: string): Quantity {
  const q = parseQuantity(raw)
  if (q.value < MIN_MEMORY.value) throw new Error(`is below ${MIN_MEMORY.text}, the least memory the sidecar runs in (a plain number is bytes: write 512Mi or 1Gi)`)
  return q
}

/** A parser from this file as a `serve` option parser: the message names the value first (`'300' is not a thread count ...`). */
export function asOption<T> (parser: (raw: string) => T): (raw: string) => T {
  return raw => {
    try {
      return parser(raw)
    } catch (err) {
      throw new Error(`'${raw}' ${(err as Error).message}`)
    }
  }
}
