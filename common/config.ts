/**
 * The one place that reads `process.env`.
 *
 * Every command declares its options in a table of `Option`s (flag, environment
 * variable, default, parser, help text). `readConfig` resolves each option once at
 * start-up with the precedence flag > environment variable > default, and throws a
 * `ConfigError` naming the flag or variable when a value does not parse. The rest of
 * the code receives plain typed objects and never looks at the environment itself.
 */
import { asOption, parseByteSize } from './contract.js'

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG'
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

export interface Option<T> {
  /** Long flag, e.g. `--port`. */
  flag: string
  /** Optional one-letter alias, e.g. `-f`. */
  short?: string
  /**
   * A former name of `flag` that still works (`--workers` for the webhook's `--processes`);
   * `flag` wins when both are given. Using it adds a notice to `_deprecated`.
   */
  deprecatedFlag?: string
  /** Environment variable, e.g. `ONNX_SIDECAR_PORT`; empty string for flag-only options. */
  env: string
  /**
   * A former name of `env` that still works when `env` is unset (each command has its own
   * names where the meaning differs); using it adds a notice to `_deprecated`.
   */
  deprecatedEnv?: string
  description: string
  default: T
  /** Text shown for the default in `--help` when `String(default)` would mislead. */
  defaultText?: string
  /** True for flags that take no value (`--help`). */
  boolean?: boolean
  /** Parses the raw string; throws an Error whose message says what is wrong. */
  parse: (raw: string) => T
}

export type OptionTable = Record<string, Option<unknown>>
export type Resolved<D extends OptionTable> = { [K in keyof D]: D[K] extends Option<infer T> ? T : never }

/** What `readConfig` adds to the options: the positional arguments, and one notice per deprecated flag or variable it used. */
export interface ReadExtras { _: string[], _deprecated: string[] }

/** A snapshot of the process environment: callers pass it around instead of reading it. */
export function processEnv (): Readonly<Record<string, string | undefined>> {
  return { ...process.env }
}

export function readConfig<D extends OptionTable> (
  table: D,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = processEnv()
): Resolved<D> & ReadExtras {
  const byFlag = new Map<string, [string, Option<unknown>]>()
  for (const [key, opt] of Object.entries(table)) {
    byFlag.set(opt.flag, [key, opt])
    if (opt.short !== undefined) byFlag.set(opt.short, [key, opt])
    if (opt.deprecatedFlag !== undefined) byFlag.set(opt.deprecatedFlag, [key, opt])
  }
  const raw = new Map<string, { value: string, source: string }>()
  /** Values given with a deprecated flag: used only when the option's own flag is not given. */
  const rawOld = new Map<string, { value: string, source: string }>()
  const positional: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--') {
      positional.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    const entry = byFlag.get(name)
    if (entry === undefined) throw new ConfigError(`unknown flag '${name}' (see --help)`)
    const [key, opt] = entry
    let value: string
    if (eq !== -1) {
      value = arg.slice(eq + 1)
    } else if (opt.boolean === true) {
      value = 'true'
    } else {
      const next = argv[i + 1]
      if (next === undefined) throw new ConfigError(`flag '${name}' needs a value`)
      value = next
      i++
    }
    if (name === opt.deprecatedFlag) rawOld.set(key, { value, source: `flag ${name}` })
    else raw.set(key, { value, source: `flag ${opt.flag}` })
  }

  const deprecated: string[] = []
  const out: Record<string, unknown> = { _: positional, _deprecated: deprecated }
  for (const [key, opt] of Object.entries(table)) {
    let given = raw.get(key)
    const old = rawOld.get(key)
    if (old !== undefined) {
      deprecated.push(`flag ${opt.deprecatedFlag as string} is deprecated for this command; use ${opt.flag}${given === undefined ? '' : ` (given too, so ${opt.deprecatedFlag as string} is ignored)`}`)
      given ??= old
    }
    if (given === undefined && opt.env !== '') {
      const fromEnv = env[opt.env]
      if (fromEnv !== undefined && fromEnv !== '') given = { value: fromEnv, source: `environment variable ${opt.env}` }
    }
    if (given === undefined && opt.deprecatedEnv !== undefined) {
      const fromOld = env[opt.deprecatedEnv]
      if (fromOld !== undefined && fromOld !== '') {
        given = { value: fromOld, source: `environment variable ${opt.deprecatedEnv}` }
        deprecated.push(`environment variable ${opt.deprecatedEnv} is deprecated for this command; use ${opt.env} (or ${opt.flag})`)
      }
    }
    if (given === undefined) {
      out[key] = opt.default
      continue
    }
    try {
      out[key] = opt.parse(given.value)
    } catch (err) {
      throw new ConfigError(`${given.source}: ${(err as Error).message}`)
    }
  }
  return out as Resolved<D> & ReadExtras
}

export function helpText (usage: string, table: OptionTable): string {
  const rows = Object.values(table).map(opt => {
    const names = [opt.short, opt.flag].filter(Boolean).join(', ') + (opt.deprecatedFlag === undefined ? '' : ` (deprecated: ${opt.deprecatedFlag})`)
    const env = opt.env === '' ? '' : `  [env ${opt.env}${opt.deprecatedEnv === undefined ? '' : `; deprecated: ${opt.deprecatedEnv}`}]`
    const def = opt.boolean === true ? '' : `  (default: ${opt.defaultText ?? JSON.stringify(opt.default)})`
    return `  ${names}\n      ${opt.description}${def}${env}`
  })
  return `${usage}\n\nOptions:\n${rows.join('\n')}\n`
}

// ---- parsers ---------------------------------------------------------------

export const parse = {
  string: (raw: string): string => raw,
  int (min: number, max: number) {
    return (raw: string): number => {
      if (!/^-?\d+$/.test(raw.trim())) throw new Error(`'${raw}' is not an integer`)
      const n = Number(raw)
      if (n < min || n > max) throw new Error(`${n} is outside ${min}..${max}`)
      return n
    }
  },
  /** A finite number (fractions and ratios) within [min, max]. */
  number (min: number, max: number) {
    return (raw: string): number => {
      const n = Number(raw.trim())
      if (raw.trim() === '' || !Number.isFinite(n)) throw new Error(`'${raw}' is not a number`)
      if (n < min || n > max) throw new Error(`${n} is outside ${min}..${max}`)
      return n
    }
  },
  port (raw: string): number {
    return parse.int(1, 65535)(raw)
  },
  bool (raw: string): boolean {
    const v = raw.trim().toLowerCase()
    if (['1', 'true', 'yes', 'on'].includes(v)) return true
    if (['0', 'false', 'no', 'off'].includes(v)) return false
    throw new Error(`'${raw}' is not a boolean (true/false)`)
  },
  oneOf<T extends string> (...allowed: T[]) {
    return (raw: string): T => {
      if (!(allowed as string[]).includes(raw)) throw new Error(`'${raw}' is not one of ${allowed.join(', ')}`)
      return raw as T
    }
  },
  /** Byte sizes: `64mb`, `512kb`, `1048576`, and Kubernetes quantities `512Mi`, `0.5Gi`, `256M` (common/contract.ts `parseByteSize`). */
  bytes: asOption(parseByteSize)
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/** Options every command shares. */
export function commonOptions () {
  return {
    help: { flag: '--help', short: '-h', env: '', description: 'show this help', default: false, boolean: true, parse: parse.bool } as Option<boolean>,
    logLevel: { flag: '--log-level', env: 'ONNX_SIDECAR_LOG_LEVEL', description: `log level (${LOG_LEVELS.join(', ')})`, default: 'info', parse: parse.oneOf(...LOG_LEVELS) } as Option<LogLevel>
  }
}

/** OpenTelemetry is on only when one of the standard variables asks for an exporter. */
export function otelRequested (env: Readonly<Record<string, string | undefined>>): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false
  const traces = env.OTEL_TRACES_EXPORTER
  if (traces !== undefined && traces !== '' && traces !== 'none') return true
  return ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'].some(k => (env[k] ?? '') !== '')
}
