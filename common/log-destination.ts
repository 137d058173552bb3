/**
 * The logger's stdout: pino's own destination (sonic-boom) writing fd 1 asynchronously, as
 * fast as before, but holding at most `maxBytes` of lines that fd 1 has not taken yet.
 *
 * When stdout stalls (a log collector that stops reading, a full pipe), lines wait in
 * memory; without a cap they waited without bound (200 bad 1 MiB requests left a sidecar
 * at 413 MiB RSS for good). With it, a line that would take the held bytes past the cap is
 * dropped whole and counted through `onDrop`; logging goes on once fd 1 drains again.
 */
import { pino } from 'pino'

const MiB = 1024 * 1024

/** What stdout may hold back, in bytes, before lines are dropped (4 MiB). */
export const LOG_BUFFER_BYTES = 4 * MiB

export type LogDestination = ReturnType<typeof pino.destination>

export interface LogDestinationOptions {
  /** The file descriptor written to (1, stdout, unless a test gives a pipe). */
  fd?: number
  /** Bytes held back at most (LOG_BUFFER_BYTES unless a test asks for less). */
  maxBytes?: number
  /** Called once per dropped line. */
  onDrop?: () => void
}

export function logDestination (opts: LogDestinationOptions = {}): LogDestination {
  const stream = pino.destination({ fd: opts.fd ?? 1, sync: false, maxLength: opts.maxBytes ?? LOG_BUFFER_BYTES })
  const onDrop = opts.onDrop
  if (onDrop !== undefined) stream.on('drop', () => { onDrop() }) // sonic-boom: one 'drop' per refused write, and pino writes one line per write
  return stream
}
