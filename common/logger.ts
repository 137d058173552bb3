import { pino, type Logger, type DestinationStream } from 'pino'
import type { LogLevel } from './config.js'
import { logDestination } from './log-destination.js'

export type { Logger }

/**
 * Characters a string log field or message keeps (1,024); the rest is cut and the line says
 * how much: a client string echoed into a log line (an error message, a model name in the
 * path) costs at most this much, not the size of the request.
 */
export const MAX_LOG_STRING = 1024

/** `s` cut to MAX_LOG_STRING characters, with a marker saying how many were cut. */
export function truncateLogString (s: string): string {
  if (s.length <= MAX_LOG_STRING) return s
  // never split a surrogate pair: a lone half would print as \ud83d
  const end = isHighSurrogate(s.charCodeAt(MAX_LOG_STRING - 1)) ? MAX_LOG_STRING - 1 : MAX_LOG_STRING
  return `${s.slice(0, end)}…(${s.length - end} characters truncated)`
}

function isHighSurrogate (code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff
}

/**
 * The string fields of a log call's object, cut to MAX_LOG_STRING. Per line, so it only looks
 * at the top-level fields (a handful) and copies the object only when one is too long.
 */
function truncateFields (obj: Record<string, unknown>): Record<string, unknown> {
  let out = obj
  for (const key in obj) {
    const value = obj[key]
    if (typeof value === 'string' && value.length > MAX_LOG_STRING) {
      if (out === obj) out = { ...obj }
      out[key] = truncateLogString(value)
    }
  }
  return out
}

/** The message pino takes for a line logged without one: an Error's, or the `err` field's. */
function errorMessage (arg: unknown): string | undefined {
  if (typeof arg !== 'object' || arg === null) return undefined
  const err = arg instanceof Error ? arg : (arg as { err?: unknown }).err
  return err instanceof Error ? err.message : undefined
}

/** How deep a serialized error's nested errors (`cause`, error-valued fields) are cut. */
const ERROR_DEPTH = 3

/** pino's error serializer, its strings cut: message and stack carry whatever the error was made from. */
function serializeError (err: unknown): unknown {
  return truncateNested(pino.stdSerializers.err(err as Error), ERROR_DEPTH)
}

function truncateNested (value: unknown, depth: number): unknown {
  if (typeof value === 'string') return truncateLogString(value)
  if (depth === 0 || typeof value !== 'object' || value === null || Array.isArray(value)) return value
  const obj = value as Record<string, unknown>
  for (const key in obj) obj[key] = truncateNested(obj[key], depth - 1) // a fresh object from the serializer, ours to change
  return obj
}

/**
 * pino JSON on stdout (or an injected stream in tests). Field names are fixed here
 * and in callers; nothing user-controlled becomes a field name. String fields and the
 * message are cut to MAX_LOG_STRING characters (child logger bindings are not: pino
 * formats them once per child, and callers bind only fixed values such as `component`). Stdout holds back at most
 * LOG_BUFFER_BYTES (common/log-destination.ts); `onDrop` is called for each line dropped
 * beyond that (the caller counts it in its metrics).
 */
export function createLogger (opts: { level: LogLevel, name: string, stream?: DestinationStream, onDrop?: () => void }): Logger {
  return pino({
    name: opts.name,
    level: opts.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      log: truncateFields
    },
    serializers: { err: serializeError },
    hooks: {
      logMethod (args, method) {
        if (args.length === 1) {
          // no message given: pino would take the error's message, uncut
          const message = errorMessage(args[0])
          if (message !== undefined && message.length > MAX_LOG_STRING) return method.call(this, args[0] as object, truncateLogString(message))
        }
        for (let i = 0; i < args.length; i++) {
          const arg: unknown = args[i]
          if (typeof arg === 'string' && arg.length > MAX_LOG_STRING) (args as unknown[])[i] = truncateLogString(arg)
        }
        method.apply(this, args)
      }
    },
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' }
  }, opts.stream ?? logDestination({ onDrop: opts.onDrop }))
}
