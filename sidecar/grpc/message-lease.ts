/**
 * The memory lease of a gRPC message: the deserializer of `ModelInfer` looks at the
 * message's bytes (`prescan.ts`), charges what decoding will cost to the request memory,
 * and only then lets protobufjs decode it. A message that is malformed, past a structural
 * limit, or that does not fit in memory is not decoded at all: the handler receives a
 * stand-in that carries the error, and answers it with the usual status
 * (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE).
 *
 * The lease travels on the decoded message and is released when the call has answered.
 * grpc-js drops a message without calling the handler when the client cancels before
 * half-closing; a FinalizationRegistry releases such a lease once the message is
 * collected, which is also when its memory is freed.
 */
import { errors } from '../core/errors.js'
import type { RequestLease, RequestMemory } from '../codec/request-memory.js'
import { prescanInferRequest } from './prescan.js'

const LEASE = Symbol('onnx-sidecar.message-lease')

export interface MessageLease {
  lease?: RequestLease
  error?: unknown
  /** Releases the lease (once); the call has answered. */
  done: () => void
}

const orphans = new FinalizationRegistry<RequestLease>(lease => lease.release())

export function leasingDeserializer (deserialize: (buf: Buffer) => object, memory: RequestMemory): (buf: Buffer) => object {
  return (buf: Buffer) => {
    let lease: RequestLease
    try {
      lease = memory.open(prescanInferRequest(buf))
    } catch (error) {
      return { [LEASE]: { error, done: () => {} } satisfies MessageLease }
    }
    let msg: Record<PropertyKey, unknown>
    try {
      msg = deserialize(buf) as Record<PropertyKey, unknown>
    } catch (err) {
      lease.release()
      return { [LEASE]: { error: errors.BAD_REQUEST(`the message is not a valid ModelInferRequest: ${(err as Error).message}`), done: () => {} } satisfies MessageLease }
    }
    const token = {}
    orphans.register(msg, lease, token)
    msg[LEASE] = {
      lease,
      done: () => {
        orphans.unregister(token)
        lease.release()
      }
    } satisfies MessageLease
    return msg
  }
}

/** The lease of a message the deserializer above produced (none for other callers). */
export function leaseOf (msg: object): MessageLease {
  return (msg as Record<PropertyKey, MessageLease | undefined>)[LEASE] ?? { done: () => {} }
}
