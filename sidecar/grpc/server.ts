/**
 * The gRPC listener: `inference.GRPCInferenceService` from `oip.proto` (beside this file,
 * also under dist/) on a loopback port and, with `--socket-dir`, on `<dir>/grpc.sock`.
 *
 * @grpc/grpc-js and the proto are loaded on first use, so `--grpc-port off` costs nothing.
 */
import { fileURLToPath } from 'node:url'
import type * as GrpcJs from '@grpc/grpc-js'
import { hostPort } from '../../common/http.js'
import type { RequestMemory } from '../codec/request-memory.js'
import { leasingDeserializer } from './message-lease.js'
import { grpcService, type GrpcServiceDeps } from './service.js'

/** Idle connections live 5 minutes (longer than client pools expect), on both gRPC servers (grpc-js here, `h2/server.ts`). */
export const MAX_CONNECTION_IDLE_MS = 5 * 60_000

export const PROTO = fileURLToPath(new URL('./oip.proto', import.meta.url))

/** proto-loader options: the proto's own snake_case names, 64-bit integers as strings, one-of names. */
export const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, arrays: true, objects: false, oneofs: true }

export interface GrpcServerOptions extends GrpcServiceDeps {
  /** Largest message accepted (the REST body limit); grpc-js answers RESOURCE_EXHAUSTED above it. */
  maxMessageBytes: number
  /** Request memory: ModelInfer messages are charged to it before they are decoded. */
  memory: RequestMemory
}

export class GrpcServer {
  #opts: GrpcServerOptions
  #server: GrpcJs.Server | undefined
  #grpc: typeof GrpcJs | undefined

  constructor (opts: GrpcServerOptions) {
    this.#opts = opts
  }

  async #ensure (): Promise<{ grpc: typeof GrpcJs, server: GrpcJs.Server }> {
    if (this.#server !== undefined && this.#grpc !== undefined) return { grpc: this.#grpc, server: this.#server }
    const grpc = await import('@grpc/grpc-js')
    const loader = await import('@grpc/proto-loader')
    const definition = await loader.load(PROTO, LOADER_OPTIONS)
    const pkg = grpc.loadPackageDefinition(definition) as unknown as { inference: { GRPCInferenceService: GrpcJs.ServiceClientConstructor } }
    const server = new grpc.Server({
      'grpc.max_receive_message_length': this.#opts.maxMessageBytes,
      'grpc.max_send_message_length': -1,
      // Channelz (grpc's introspection service, which this server does not expose) costs ~60 µs of bookkeeping per call.
      'grpc.enable_channelz': 0,
      // Same idea as REST's keep-alive timeout: let idle connections live longer than client pools expect.
      'grpc.max_connection_idle_ms': MAX_CONNECTION_IDLE_MS
    })
    const service = pkg.inference.GRPCInferenceService.service
    const infer = service.ModelInfer as GrpcJs.MethodDefinition<object, unknown>
    server.addService({
      ...service,
      ModelInfer: { ...infer, requestDeserialize: leasingDeserializer(infer.requestDeserialize, this.#opts.memory) }
    }, grpcService(this.#opts))
    this.#grpc = grpc
    this.#server = server
    return { grpc, server }
  }

  /** Listens on host:port (0 picks a free port); resolves with the port. */
  async listen (port: number, host: string): Promise<number> {
    return await this.#bind(hostPort(host, port))
  }

  /** Listens on a Unix domain socket at `file`, which must not exist (`listenOnSocket` in sidecar.ts sets its mode). */
  async listenOnSocket (file: string): Promise<void> {
    await this.#bind(`unix:${file}`)
  }

  async #bind (target: string): Promise<number> {
    const { grpc, server } = await this.#ensure()
    return await new Promise<number>((resolve, reject) => {
      server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err)))
    })
  }

  /**
   * Stops taking calls and resolves once the in-flight ones have answered, or after
   * `graceMs`, when the rest are cancelled.
   */
  async close (graceMs: number): Promise<void> {
    const server = this.#server
    if (server === undefined) return
    this.#server = undefined
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { server.forceShutdown(); resolve() }, graceMs)
      timer.unref()
      server.tryShutdown(() => { clearTimeout(timer); resolve() })
    })
  }
}
