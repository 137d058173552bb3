/**
 * One unary call on an HTTP/2 stream, shaped as grpc-js's `ServerUnaryCall` so the handlers
 * of `../service.ts` run unchanged: `request`, `metadata` (`get`, `getMap`), `getDeadline()`,
 * `cancelled` and the 'cancelled' event; `answer` is their `callback(err, response, trailers)`.
 * The answer is sent once: the first of the handler's answer, the deadline, or the
 * client's cancellation wins.
 */
import { EventEmitter } from 'node:events'
import { grpcCodeOfStatus, statusOf } from '../../inference/call-status.js'
import { SidecarError } from '../../core/errors.js'
import { MAX_MESSAGE_BYTES } from '../../core/client-strings.js'
import { truncateUtf8 } from '../../../common/truncate.js'
import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2'
import { encodeMessage, frame, headersOf, Status, type CallMetadata, type CallStatus, type MetadataLike } from './framing.js'

const { HTTP2_HEADER_STATUS, HTTP2_HEADER_CONTENT_TYPE } = constants

export const GRPC_CONTENT_TYPE = 'application/grpc+proto'

/** Headers of a gRPC answer (before the message, or the whole answer when Trailers-Only). */
function responseHeaders (): OutgoingHttpHeaders {
  return { [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: GRPC_CONTENT_TYPE }
}

/** An error as the handlers give it (service.ts `toGrpcError`): a code, details and maybe metadata. */
interface HandlerError {
  code?: number
  details?: string
  message?: string
  metadata?: MetadataLike
}

/**
 * Ends `stream` with `status` and no message (a Trailers-Only answer: one HEADERS frame
 * with END_STREAM), unless it is closed. A client still sending then gets RST_STREAM
 * NO_ERROR, so it stops (gRPC's HTTP/2 protocol doc). The status message is cut to
 * `MAX_MESSAGE_BYTES` before it is percent-encoded (up to 3 bytes each), so the header
 * stays within what clients accept (grpc-js: 8 KiB of metadata) and the answer arrives.
 */
export function endWithStatus (stream: ServerHttp2Stream, status: CallStatus, metadata?: MetadataLike, extra?: OutgoingHttpHeaders): void {
  if (stream.destroyed || stream.closed) return
  const headers = headersOf(metadata, { ...responseHeaders(), ...extra })
  headers['grpc-status'] = String(status.code)
  if (status.details !== '') headers['grpc-message'] = encodeMessage(truncateUtf8(status.details, MAX_MESSAGE_BYTES))
  stream.respond(headers, { endStream: true })
  if (!stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR)
}

/** A `SidecarError` thrown by the transport itself (request memory) as a status and its metadata. */
export function endWithError (stream: ServerHttp2Stream, err: unknown): void {
  const retryAfter = err instanceof SidecarError ? err.headers['retry-after'] : undefined
  const message = err instanceof SidecarError ? err.message : 'internal error'
  endWithStatus(stream, { code: grpcCodeOfStatus(statusOf(err)), details: message }, retryAfter === undefined ? undefined : { getMap: () => ({ 'retry-after': retryAfter }) })
}

export class H2Call extends EventEmitter {
  readonly request: unknown
  readonly metadata: CallMetadata
  cancelled = false
  #stream: ServerHttp2Stream
  #deadline: number
  #timer: NodeJS.Timeout | undefined
  #done = false
  #serialize: (value: unknown) => Buffer

  /** `deadlineMs`: ms since the epoch, or Infinity. */
  constructor (stream: ServerHttp2Stream, request: unknown, metadata: CallMetadata, deadlineMs: number, serialize: (value: unknown) => Buffer) {
    super()
    this.request = request
    this.metadata = metadata
    this.#stream = stream
    this.#deadline = deadlineMs
    this.#serialize = serialize
    stream.once('close', this.#onClose)
    if (Number.isFinite(deadlineMs)) {
      this.#timer = setTimeout(() => this.#expire(), Math.max(0, deadlineMs - Date.now()))
    }
  }

  /** ms since the epoch, or Infinity when the client set no deadline (grpc-js's contract). */
  getDeadline (): number {
    return this.#deadline
  }

  /** The handler's callback: `(err, response, trailers?)`. */
  readonly answer = (err: HandlerError | null | undefined, value?: unknown, trailers?: MetadataLike): void => {
    if (this.#done) return
    this.#finish()
    const stream = this.#stream
    if (stream.destroyed || stream.closed) return
    if (err !== null && err !== undefined) {
      const code = typeof err.code === 'number' && err.code >= 0 && err.code <= 16 ? err.code : Status.UNKNOWN
      endWithStatus(stream, { code, details: err.details ?? err.message ?? '' }, err.metadata ?? trailers)
      return
    }
    let body: Buffer
    try {
      body = frame(this.#serialize(value))
    } catch (e) {
      endWithStatus(stream, { code: Status.INTERNAL, details: `the response could not be serialized: ${(e as Error).message}` })
      return
    }
    const trailer = headersOf(trailers, { 'grpc-status': '0' })
    stream.respond(responseHeaders(), { waitForTrailers: true })
    stream.once('wantTrailers', () => { if (!stream.destroyed) stream.sendTrailers(trailer) })
    stream.end(body)
  }

  #finish (): void {
    this.#done = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#stream.off('close', this.#onClose)
  }

  #expire (): void {
    if (this.#done) return
    this.#finish()
    this.#cancel()
    endWithStatus(this.#stream, { code: Status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' })
  }

  readonly #onClose = (): void => {
    if (this.#done) return
    this.#finish()
    this.#cancel()
  }

  #cancel (): void {
    this.cancelled = true
    this.emit('cancelled', 'cancelled')
  }
}
