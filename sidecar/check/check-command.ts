/**
 * `onnx-sidecar check REPOSITORY [--against BASELINE]`: the CI gate (docs/check.md). Loads
 * the repository as `serve` does (load.ts), runs every golden case next to the models
 * (golden.ts) and, with `--against`, checks the candidate's signature against the
 * baseline's (compat.ts) and compares their answers on a replay sample (compare.ts).
 * Exits 0 pass, 1 regressed, 2 invalid or incompatible, 3 usage error (report.ts).
 */
import { stat, writeFile } from 'node:fs/promises'
import { ConfigError, helpText, processEnv, readConfig } from '../../common/config.js'
import { createLogger, type Logger } from '../../common/logger.js'
import { compareVersions } from './compare.js'
import { incompatibilities } from './compat.js'
import { goldenCasesFor, runGoldenCase } from './golden.js'
import { loadRepository, servingVersion, type LoadedRepository, type LoadedVersion } from './load.js'
import { checkOptions } from './options.js'
import { EXIT, exitCode, jsonSummary, junitXml, textSummary, type CheckCase, type CheckSuite } from './report.js'
import { generateSample, readSample } from './sample.js'

const USAGE = 'usage: onnx-sidecar check REPOSITORY [--against REPOSITORY|N|MODEL:N] [options]'

type Options = ReturnType<typeof readConfig<ReturnType<typeof checkOptions>>>

/** Loading and golden cases of every version in the repository. */
async function checkVersions (repo: LoadedRepository): Promise<CheckSuite[]> {
  const suites: CheckSuite[] = []
  for (const versions of repo.models.values()) {
    for (const v of versions) {
      const suite: CheckSuite = { name: v.version === 0 ? v.model : `${v.model}/${v.version}`, cases: [] }
      suites.push(suite)
      if (v.mv === undefined) {
        suite.cases.push({ name: 'load', outcome: 'invalid', message: v.reason, seconds: v.seconds })
        continue
      }
      suite.cases.push({ name: 'load', outcome: 'pass', message: `config, session and warm-up in ${v.seconds.toFixed(2)} s`, seconds: v.seconds })
      try {
        for (const c of await goldenCasesFor(v)) suite.cases.push(await runGoldenCase(v, c))
      } catch (err) {
        suite.cases.push({ name: 'golden files', outcome: 'invalid', message: (err as Error).message, seconds: 0 })
      }
    }
  }
  return suites
}

/** `--against N` or `MODEL:N`. */
const AGAINST_VERSION = /^(?:([^:]+):)?([1-9]\d{0,8})$/

const badAgainst = (against: string): ConfigError => new ConfigError(`flag --against: '${against}' is neither a directory, a version (N) nor MODEL:N`)

/** Candidate and baseline pairs `--against` asks for; a usage error for a value that is none of its forms. */
interface Pair {
  model: string
  candidate: LoadedVersion | undefined
  baseline: LoadedVersion | undefined
  label: string
  /** The baseline repository has no such model at all: nothing to compare, nothing broken. */
  isNew: boolean
}

async function pairs (against: string, candidate: LoadedRepository, logger: Logger, opened: LoadedRepository[]): Promise<Pair[]> {
  const isDir = (await stat(against).catch(() => undefined))?.isDirectory() === true
  if (isDir) {
    const base = await loadRepository(against, logger, [...candidate.models.keys()])
    opened.push(base)
    return [...candidate.models].map(([model, versions]) => {
      const b = servingVersion(base.models.get(model) ?? [])
      return { model, candidate: servingVersion(versions), baseline: b, label: b === undefined ? `${against} (no version of '${model}' loads there)` : `${against}: ${model}/${b.version}`, isNew: !base.models.has(model) }
    })
  }
  const m = AGAINST_VERSION.exec(against)
  if (m === null) throw badAgainst(against)
  const [, only, n] = m as unknown as [string, string | undefined, string]
  const out = []
  for (const [model, versions] of candidate.models) {
    if (only !== undefined && model !== only) continue
    const b = versions.find(v => v.version === Number(n))
    // The candidate: the highest version that is not the baseline.
    const c = servingVersion(versions.filter(v => v.version !== Number(n)))
    if (only === undefined && b === undefined) continue
    out.push({ model, candidate: c, baseline: b, label: `${model}/${n}`, isNew: false })
  }
  if (out.length === 0) throw new ConfigError(`flag --against: no model in ${candidate.repository} has ${only !== undefined ? `the name '${only}'` : `a version ${n}`}`)
  return out
}

async function checkAgainst (opts: Options, candidate: LoadedRepository, logger: Logger, opened: LoadedRepository[]): Promise<CheckSuite[]> {
  const suites: CheckSuite[] = []
  for (const p of await pairs(opts.against, candidate, logger, opened)) {
    const suite: CheckSuite = { name: `${p.model}${p.candidate !== undefined ? `/${p.candidate.version}` : ''} against ${p.label}`, cases: [] }
    suites.push(suite)
    const c = p.candidate?.mv
    const b = p.baseline?.mv
    if (p.baseline === undefined && p.candidate !== undefined && p.isNew) {
      suite.cases.push({ name: 'signature', outcome: 'pass', message: 'a new model: the baseline has none to compare with', seconds: 0 })
      continue
    }
    if (c === undefined || b === undefined) {
      const which = c === undefined ? 'candidate' : 'baseline'
      const why = (c === undefined ? p.candidate?.reason : p.baseline?.reason) ?? 'no version to compare'
      suite.cases.push({ name: 'signature', outcome: 'invalid', message: `the ${which} did not load: ${why}`, seconds: 0 })
      continue
    }
    const started = performance.now()
    const problems = incompatibilities(b, c)
    const seconds = (performance.now() - started) / 1000
    if (problems.length > 0) {
      suite.cases.push({ name: 'signature', outcome: 'invalid', message: `incompatible: ${problems.join('; ')}`, seconds })
      continue
    }
    suite.cases.push({ name: 'signature', outcome: 'pass', message: 'same inputs, outputs, datatypes, shapes and batch axis', seconds })
    let bodies
    try {
      bodies = opts.sample !== '' ? await readSample(opts.sample) : generateSample(b, opts.sampleRows, opts.seed)
    } catch (err) {
      suite.cases.push({ name: 'replay sample', outcome: 'invalid', message: (err as Error).message, seconds: 0 })
      continue
    }
    const run = await compareVersions(b, c, bodies, opts)
    suite.name += ` (${run.rows} rows ${opts.sample !== '' ? `from ${opts.sample}` : `generated, seed ${opts.seed}`})`
    suite.cases.push(...run.cases)
  }
  return suites
}

export async function checkCommand (argv: string[]): Promise<number> {
  const table = checkOptions()
  let opts: Options
  try {
    opts = readConfig(table, argv, processEnv())
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`onnx-sidecar check: ${err.message}\n${USAGE}\n`)
    return EXIT.usage
  }
  if (opts.help) {
    process.stdout.write(helpText(USAGE, table))
    return EXIT.pass
  }
  if (opts._.length !== 1) {
    process.stderr.write(`onnx-sidecar check: give one model repository (got ${opts._.length})\n${USAGE}\n`)
    return EXIT.usage
  }
  const repository = opts._[0] as string
  if ((await stat(repository).catch(() => undefined))?.isDirectory() !== true) {
    process.stderr.write(`onnx-sidecar check: '${repository}' is not a directory\n`)
    return EXIT.invalid
  }
  if (opts.against !== '' && !AGAINST_VERSION.test(opts.against) && (await stat(opts.against).catch(() => undefined))?.isDirectory() !== true) {
    process.stderr.write(`onnx-sidecar check: ${badAgainst(opts.against).message}\n${USAGE}\n`)
    return EXIT.usage
  }
  const logger = createLogger({ level: opts.logLevel, name: 'onnx-sidecar', stream: process.stderr })
  const opened: LoadedRepository[] = []
  let suites: CheckSuite[]
  try {
    const candidate = await loadRepository(repository, logger)
    opened.push(candidate)
    suites = await checkVersions(candidate)
    if (suites.length === 0) suites.push({ name: repository, cases: [{ name: 'models', outcome: 'invalid', message: 'no model directory in the repository', seconds: 0 } satisfies CheckCase] })
    if (opts.against !== '') suites.push(...await checkAgainst(opts, candidate, logger, opened))
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`onnx-sidecar check: ${err.message}\n${USAGE}\n`)
    return EXIT.usage
  } finally {
    for (const r of opened) await r.close()
  }
  process.stdout.write(opts.output === 'json' ? jsonSummary(suites) : textSummary(suites))
  if (opts.junit !== '') await writeFile(opts.junit, junitXml(suites))
  return exitCode(suites)
}
