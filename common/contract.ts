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
 * Workers and threads for a sidecar that may use `cpus` CPUs: the sidecar's own rule
 * (`defaultParallelism`), kept inside `--workers` and `--threads`' ranges: above 129 CPUs
 * the workers stop at 64 and the CPUs go to threads, which stop at 256.
 */
export function parallelismFor (cpus: number): { workers: number, threads: number } {
  const workers = Math.min(WORKERS.max, Math.max(WORKERS.min, Math.floor(cpus / 2)))
  const { threads } = defaultParallelism(cpus, workers)
  return { workers, threads: Math.min(THREADS.max, threads) }
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
