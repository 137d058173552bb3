/**
 * Golden cases: requests kept next to a model with the answers they must get (docs/check.md).
 *
 *   <model>/golden/*.json            run against every version of the model
 *   <model>/<version>/golden/*.json  run against that version only
 *
 * A file holds one case or an array of cases:
 *
 *   { "name": "two rows",                                  optional; default file#index
 *     "inputs": [ Open Inference Protocol REST inputs ],
 *     "parameters": { ... },                               optional request parameters
 *     "atol": 1e-5, "rtol": 0,                             optional, for every output
 *     "outputs": [ { "name": "probabilities", "data": [...], "shape": [2, 2],
 *                    "parameters": { "classification": 1 },  optional, as a request asks
 *                    "atol": 1e-5, "rtol": 0 } ] }           optional, this output only
 *
 * A number matches when |actual - expected| <= atol + rtol * |expected|; strings and
 * booleans match exactly, null only null. Each case runs as a request does (infer.ts).
 */
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import type { LoadedVersion } from './load.js'
import { inferBody, type ResponseOutput } from './infer.js'
import type { CheckCase } from './report.js'

export const GOLDEN_DIR = 'golden'
/** Tolerances when a case gives none: 1e-5 absolute (float32 arithmetic across runtimes), no relative part. */
export const GOLDEN_DEFAULTS = Object.freeze({ atol: 1e-5, rtol: 0 })

export interface ExpectedOutput {
  name: string
  data: unknown[]
  shape: number[] | undefined
  parameters: Record<string, unknown> | undefined
  atol: number
  rtol: number
}

export interface GoldenCase {
  name: string
  file: string
  /** The request body sent. */
  body: Record<string, unknown>
  outputs: ExpectedOutput[]
}

/** A golden file that cannot be used as written: `check` exits 2. */
export class GoldenFormatError extends Error {
  readonly code = 'ERR_GOLDEN_FORMAT'
  constructor (message: string) {
    super(message)
    this.name = 'GoldenFormatError'
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function tolerance (v: unknown, fallback: number, where: string): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !(v >= 0)) throw new GoldenFormatError(`${where} must be a non-negative number`)
  return v
}

function parseCase (raw: unknown, file: string, index: number): GoldenCase {
  const where = `${file}: case ${index}`
  if (!isObject(raw)) throw new GoldenFormatError(`${where} must be an object`)
  if (raw.name !== undefined && typeof raw.name !== 'string') throw new GoldenFormatError(`${where}: name must be a string`)
  if (!Array.isArray(raw.inputs) || raw.inputs.length === 0) throw new GoldenFormatError(`${where}: inputs must be a non-empty array of Open Inference Protocol inputs`)
  if (raw.parameters !== undefined && !isObject(raw.parameters)) throw new GoldenFormatError(`${where}: parameters must be an object`)
  if (!Array.isArray(raw.outputs) || raw.outputs.length === 0) throw new GoldenFormatError(`${where}: outputs must be a non-empty array of expected outputs`)
  const atol = tolerance(raw.atol, GOLDEN_DEFAULTS.atol, `${where}: atol`)
  const rtol = tolerance(raw.rtol, GOLDEN_DEFAULTS.rtol, `${where}: rtol`)
  const outputs = raw.outputs.map((o, i): ExpectedOutput => {
    const at = `${where}: outputs[${i}]`
    if (!isObject(o) || typeof o.name !== 'string' || o.name === '') throw new GoldenFormatError(`${at} must be an object with a name`)
    if (!Array.isArray(o.data)) throw new GoldenFormatError(`${at}.data must be an array`)
    if (o.shape !== undefined && !(Array.isArray(o.shape) && o.shape.every(d => Number.isSafeInteger(d) && d >= 0))) throw new GoldenFormatError(`${at}.shape must be an array of non-negative integers`)
    if (o.parameters !== undefined && !isObject(o.parameters)) throw new GoldenFormatError(`${at}.parameters must be an object`)
    return { name: o.name, data: (o.data as unknown[]).flat(Infinity), shape: o.shape as number[] | undefined, parameters: o.parameters as Record<string, unknown> | undefined, atol: tolerance(o.atol, atol, `${at}.atol`), rtol: tolerance(o.rtol, rtol, `${at}.rtol`) }
  })
  const body: Record<string, unknown> = {
    id: `golden-${index}`,
    inputs: raw.inputs,
    outputs: outputs.map(o => (o.parameters === undefined ? { name: o.name } : { name: o.name, parameters: o.parameters }))
  }
  if (raw.parameters !== undefined) body.parameters = raw.parameters
  return { name: raw.name ?? `${path.basename(file)}#${index}`, file, body, outputs }
}

/** The cases of one golden directory, files in name order; none when it does not exist. */
export async function readGoldenDir (dir: string): Promise<GoldenCase[]> {
  let names: string[]
  try {
    names = (await readdir(dir)).filter(n => n.endsWith('.json')).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const cases: GoldenCase[] = []
  for (const n of names) {
    const file = path.join(dir, n)
    let doc: unknown
    try {
      doc = JSON.parse(await readFile(file, 'utf8'))
    } catch (err) {
      throw new GoldenFormatError(`${file}: not valid JSON: ${(err as Error).message}`)
    }
    const list = Array.isArray(doc) ? doc : [doc]
    list.forEach((raw, i) => cases.push(parseCase(raw, file, i)))
  }
  return cases
}

/** The golden cases that apply to a version: the model's, then the version's own. */
export async function goldenCasesFor (v: LoadedVersion): Promise<GoldenCase[]> {
  return [...await readGoldenDir(path.join(v.dir, GOLDEN_DIR)), ...await readGoldenDir(path.join(v.dir, String(v.version), GOLDEN_DIR))]
}

const fmt = (v: unknown): string => (typeof v === 'number' ? String(Math.fround(v) === v ? Number(v.toPrecision(8)) : v) : JSON.stringify(v))

/** Why an output differs from what was expected, or undefined when it matches. */
export function mismatch (expected: ExpectedOutput, actual: ResponseOutput | undefined): string | undefined {
  if (actual === undefined) return `output '${expected.name}' missing from the response`
  if (expected.shape !== undefined && expected.shape.join(',') !== actual.shape.join(',')) return `output '${expected.name}' has shape [${actual.shape.join(',')}], expected [${expected.shape.join(',')}]`
  if (actual.data.length !== expected.data.length) return `output '${expected.name}' has ${actual.data.length} values, expected ${expected.data.length}`
  let bad = 0
  let first = -1
  let worst = 0
  for (let i = 0; i < expected.data.length; i++) {
    const e = expected.data[i]
    const a = actual.data[i]
    let ok: boolean
    if (typeof e === 'number' && typeof a === 'number') {
      const d = Math.abs(a - e)
      ok = d <= expected.atol + expected.rtol * Math.abs(e)
      if (d > worst) worst = d
    } else {
      ok = a === e
    }
    if (!ok) {
      bad++
      if (first === -1) first = i
    }
  }
  if (bad === 0) return undefined
  return `output '${expected.name}': ${bad} of ${expected.data.length} values differ (first at [${first}]: got ${fmt(actual.data[first])}, expected ${fmt(expected.data[first])}; largest difference ${Number(worst.toPrecision(4))}, atol ${expected.atol}, rtol ${expected.rtol})`
}

/** Runs one case on a loaded version: pass, fail (a value differs) or invalid (the sidecar refuses the request). */
export async function runGoldenCase (v: LoadedVersion, c: GoldenCase): Promise<CheckCase> {
  const started = performance.now()
  const seconds = (): number => (performance.now() - started) / 1000
  const name = `golden ${c.name}`
  const mv = v.mv
  if (mv === undefined) return { name, outcome: 'invalid', message: 'the version did not load', seconds: 0 }
  let outputs: ResponseOutput[]
  try {
    outputs = (await inferBody(mv, c.body)).outputs
  } catch (err) {
    return { name, outcome: 'invalid', message: `${c.file}: the sidecar refuses this request: ${(err as Error).message}`, seconds: seconds() }
  }
  const problems = c.outputs.map(e => mismatch(e, outputs.find(o => o.name === e.name))).filter((m): m is string => m !== undefined)
  if (problems.length > 0) return { name, outcome: 'fail', message: problems.join('; '), seconds: seconds() }
  return { name, outcome: 'pass', message: '', seconds: seconds() }
}
