/**
 * The gRPC listener on node:http2 itself (`--grpc-server http2`), an alternative to
 * `../server.ts` (@grpc/grpc-js) for the unary methods of `inference.GRPCInferenceService`:
 * plaintext HTTP/2 with prior knowledge (h2c), on a loopback port and on a Unix socket.
 *
 * The methods are the ones `../server.ts` serves: the same proto, loaded with the same
 * proto-loader options (its serializers and deserializers, ModelInfer's through memory
 * message lease), and the same handlers (`../service.ts`), which get a grpc-js-shaped call
 * (`call.ts`). What this file adds is the protocol around them: method, content type,
 * encoding and method checks, deadlines, the one length-prefixed message (`framing.ts`),
 * idle connections and a graceful close.
 */
import http2, { constants, type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2'
import type { UntypedServiceImplementation } from '@grpc/grpc-js'
import { leasingDeserializer } from '../message-lease.js'
import { LOADER_OPTIONS, MAX_CONNECTION_IDLE_MS, PROTO, type GrpcServerOptions } from '../server.js'
import { grpcService } from '../service.js'
import type { RequestLease } from '../../codec/request-memory.js'
import { endWithError, endWithStatus, H2Call } from './call.js'
import { encodeMessage, MessageReader, metadataOf, parseTimeout, Status } from './framing.js'
import { shown } from '../../core/client-strings.js'

/** Streams one connection may have open at once (HTTP/2 asks for at least 100). */
const MAX_CONCURRENT_STREAMS = 256
/** Per-stream receive window: 1 MiB, so a large tensor does not wait for WINDOW_UPDATEs every 64 KiB. */
const STREAM_WINDOW_BYTES = 1 << 20
/** Connection receive window: 8 MiB. */
const SESSION_WINDOW_BYTES = 8 << 20
/** nghttp2's memory per connection (MiB; header tables, queued output): at least 4 of the largest messages, at least 64 MiB. */
const sessionMemoryMiB = (maxMessageBytes: number): number => Math.max(64, 4 * Math.ceil(maxMessageBytes / 2 ** 20))

interface Method {
  deserialize: (buf: Buffer) => unknown
  serialize: (value: unknown) => Buffer
  handler: (call: H2Call, callback: H2Call['answer']) => void
}

interface MethodDefinition {
  path: string
  requestStream: boolean
  responseStream: boolean
  requestDeserialize: (buf: Buffer) => object
  responseSerialize: (value: unknown) => Buffer
}

export class H2GrpcServer {
  #opts: GrpcServerOptions
  #methods: Map<string, Method> | undefined
  #servers: Http2Server[] = []
  #sessions = new Set<Http2Session>()
  #closed = false

  constructor (opts: GrpcServerOptions) {
    this.#opts = opts
  }

  async #ensureMethods (): Promise<Map<string, Method>> {
    if (this.#methods !== undefined) return this.#methods
    const loader = await import('@grpc/proto-loader')
    const definition = await loader.load(PROTO, LOADER_OPTIONS)
    const service = definition['inference.GRPCInferenceService'] as unknown as Record<string, MethodDefinition>
    const handlers = grpcService(this.#opts) as UntypedServiceImplementation
    const methods = new Map<string, Method>()
    for (const [name, def] of Object.entries(service)) {
      if (def.requestStream || def.responseStream) continue // the service is all unary
      const deserialize = name === 'ModelInfer' ? leasingDeserializer(def.requestDeserialize, this.#opts.memory) : def.requestDeserialize
      methods.set(def.path, { deserialize, serialize: def.responseSerialize, handler: handlers[name] as unknown as Method['handler'] })
    }
    this.#methods = methods
    return methods
  }

  #createServer (methods: Map<string, Method>): Http2Server {
    const server = http2.createServer({
      maxSessionMemory: sessionMemoryMiB(this.#opts.maxMessageBytes),
      settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, initialWindowSize: STREAM_WINDOW_BYTES }
    })
    server.on('session', session => this.#onSession(session))
    server.on('stream', (stream, headers) => this.#onStream(methods, stream, headers))
    this.#servers.push(server)
    return server
  }

  #onSession (session: Http2Session): void {
    if (this.#closed) {
      session.close()
      return
    }
    this.#sessions.add(session)
    session.once('close', () => this.#sessions.delete(session))
    session.on('error', () => {}) // a broken connection: its streams see 'close'
    session.setTimeout(MAX_CONNECTION_IDLE_MS, () => session.close())
    try {
      session.setLocalWindowSize(SESSION_WINDOW_BYTES)
    } catch {} // the connection is already going away
  }

  #onStream (methods: Map<string, Method>, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => {}) // a reset stream: 'close' follows and cancels the call
    if (headers[constants.HTTP2_HEADER_METHOD] !== 'POST') {
      stream.respond({ [constants.HTTP2_HEADER_STATUS]: 405, allow: 'POST' }, { endStream: true })
      return
    }
    const contentType = headers[constants.HTTP2_HEADER_CONTENT_TYPE]
    if (typeof contentType !== 'string' || !/^application\/grpc($|[+;])/.test(contentType)) {
      // 415, so that a plain HTTP client does not take the answer for a success (gRPC's HTTP/2 protocol doc).
      stream.respond({ [constants.HTTP2_HEADER_STATUS]: 415, 'grpc-status': String(Status.INTERNAL), 'grpc-message': encodeMessage(`content-type ${shown(String(contentType))} is not application/grpc`) }, { endStream: true })
      return
    }
    const encoding = headers['grpc-encoding']
    if (encoding !== undefined && encoding !== 'identity') {
      endWithStatus(stream, { code: Status.UNIMPLEMENTED, details: `grpc-encoding ${String(encoding)} is not supported (identity only)` }, undefined, { 'grpc-accept-encoding': 'identity' })
      return
    }
    const path = String(headers[constants.HTTP2_HEADER_PATH])
    const method = methods.get(path)
    if (method === undefined) {
      endWithStatus(stream, { code: Status.UNIMPLEMENTED, details: `The server does not implement the method ${path}` })
      return
    }
    const timeoutMs = parseTimeout(headers['grpc-timeout'] as string | undefined)
    if (Number.isNaN(timeoutMs)) {
      endWithStatus(stream, { code: Status.INTERNAL, details: `malformed grpc-timeout ${String(headers['grpc-timeout'])}` })
      return
    }
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs
    const reader = new MessageReader(this.#opts.maxMessageBytes)
    let failed = false
    // The message is charged to request memory from its prefix on, as REST charges a body
    // while reading it; decoding takes over with its own lease (message-lease.ts).
    let lease: RequestLease | undefined
    stream.on('data', (chunk: Buffer) => {
      if (failed) return
      const status = reader.push(chunk)
      if (status !== undefined) {
        failed = true
        endWithStatus(stream, status)
        return
      }
      if (lease !== undefined || reader.declaredBytes < 0) return
      try {
        lease = this.#opts.memory.open(reader.declaredBytes)
      } catch (err) {
        failed = true
        endWithError(stream, err)
      }
    })
    stream.once('close', () => lease?.release())
    stream.once('end', () => {
      lease?.release()
      if (failed || stream.closed) return
      const message = reader.finish()
      if (!Buffer.isBuffer(message)) {
        endWithStatus(stream, message)
        return
      }
      if (Date.now() >= deadline) {
        endWithStatus(stream, { code: Status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' })
        return
      }
      let request: unknown
      try {
        request = method.deserialize(message)
      } catch (err) {
        endWithStatus(stream, { code: Status.INTERNAL, details: 'Error deserializing request' }) // grpc-js's words
        return
      }
      const call = new H2Call(stream, request, metadataOf(headers), deadline, method.serialize)
      try {
        method.handler(call, call.answer)
      } catch (err) {
        call.answer({ code: Status.UNKNOWN, details: `Server method handler threw error ${(err as Error).message}` })
      }
    })
  }

  /** Listens on host:port (0 picks a free port); resolves with the port. */
  async listen (port: number, host: string): Promise<number> {
    const server = this.#createServer(await this.#ensureMethods())
    await listening(server, () => server.listen(port, host))
    const address = server.address()
    return typeof address === 'object' && address !== null ? address.port : port
  }

  /** Listens on a Unix domain socket at `file`, which must not exist (`listenOnSocket` in sidecar.ts sets its mode). */
  async listenOnSocket (file: string): Promise<void> {
    const server = this.#createServer(await this.#ensureMethods())
    await listening(server, () => server.listen(file))
  }

  /**
   * Stops taking calls (GOAWAY on every connection) and resolves once the in-flight ones
   * have answered, or after `graceMs`, when the rest are cancelled.
   */
  async close (graceMs: number): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const servers = this.#servers
    this.#servers = []
    const closed = Promise.all(servers.map(async s => await new Promise<void>(resolve => s.close(() => resolve()))))
    for (const session of this.#sessions) session.close()
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<void>(resolve => { timer = setTimeout(resolve, graceMs); timer.unref() })
    await Promise.race([closed, expired])
    clearTimeout(timer)
    for (const session of this.#sessions) session.destroy()
    await closed
  }
}

async function listening (server: Http2Server, listen: () => void): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err)
    server.once('error', onError)
    server.once('listening', () => { server.off('error', onError); resolve() })
    listen()
  })
}
