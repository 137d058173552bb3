/**
 * The status of a finished inference call, one scale for both protocols: the
 * HTTP-equivalent status (metrics' `code` label, logs, REST replies) and the gRPC code
 * it maps to. Free of grpc-js, so spans can carry the gRPC code without loading it.
 */
import { SidecarError } from '../core/errors.js'
import { AbandonedError } from '../core/errors.js'

/** The HTTP-equivalent status of a failed call: 499 abandoned, the error's own status, else 500. */
export function statusOf (err: unknown): number {
  if (err instanceof AbandonedError) return err.statusCode
  if (err instanceof SidecarError) return err.statusCode
  return 500
}

/** gRPC status code (numbers from grpc's status.proto) for an HTTP-equivalent status. */
export function grpcCodeOfStatus (status: number): number {
  switch (status) {
    case 200: return 0 // OK
    case 400: return 3 // INVALID_ARGUMENT
    case 404: return 5 // NOT_FOUND
    case 409: return 6 // ALREADY_EXISTS (a shared memory region registered twice)
    case 413: return 8 // RESOURCE_EXHAUSTED
    case 499: return 1 // CANCELLED
    case 503: return 14 // UNAVAILABLE (overloaded, not ready, shutting down: retry)
    case 504: return 4 // DEADLINE_EXCEEDED
    case 405: return 12 // UNIMPLEMENTED
    default: return 13 // INTERNAL
  }
}
