import { pino, type Logger, type DestinationStream } from 'pino'
import type { LogLevel } from './config.js'

export type { Logger }

/**
 * pino JSON on stdout (or an injected stream in tests). Field names are fixed here
 * and in callers; nothing user-controlled becomes a field name.
 */
export function createLogger (opts: { level: LogLevel, name: string, stream?: DestinationStream }): Logger {
  return pino({
    name: opts.name,
    level: opts.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' }
  }, opts.stream ?? pino.destination({ fd: 1, sync: false }))
}
