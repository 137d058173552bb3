/**
 * Tensors in system shared memory (Triton's extension), whatever protocol named them: an
 * input or output whose parameters carry `shared_memory_region`,
 * `shared_memory_byte_size` and optionally `shared_memory_offset` is read from, or written
 * into, that registered region (`shm/regions.ts`) instead of travelling in the message.
 *
 * An input read from a region is charged to the request memory before its bytes are read,
 * and the buffer read becomes the tensor (no second copy). An output written into a region
 * is answered with its name, datatype, shape and those parameters, and no data.
 */
import { errors } from '../core/errors.js'
import type { TensorData } from '../core/datatypes.js'
import type { RegionSlice, SharedMemoryRegions } from '../shm/regions.js'
import { checkByteSize, describe, tensorFromBytes, type CheckedInput, type MemoryCharge } from './tensor-checks.js'

export type { RegionSlice }

/** The shm parameters of a tensor, as values (JSON's, or gRPC's decoded). */
export interface ShmParameters {
  shared_memory_region?: unknown
  shared_memory_byte_size?: unknown
  shared_memory_offset?: unknown
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0

/**
 * Where in shared memory input or output `name` lies, or undefined when its parameters
 * name no region. A byte size or offset without a region, or a value of the wrong kind, is a 400.
 */
export function sliceOf (kind: 'input' | 'output', name: string, p: ShmParameters | undefined): RegionSlice | undefined {
  const bad = kind === 'input' ? errors.BAD_INPUT : errors.BAD_OUTPUT
  const region = p?.shared_memory_region
  const byteSize = p?.shared_memory_byte_size
  const offset = p?.shared_memory_offset
  if (region === undefined) {
    if (byteSize !== undefined || offset !== undefined) throw bad(name, 'parameters.shared_memory_byte_size and shared_memory_offset need parameters.shared_memory_region')
    return undefined
  }
  if (typeof region !== 'string' || region === '') throw bad(name, `parameters.shared_memory_region must be a non-empty string, got ${describe(region)}`)
  if (byteSize === undefined) throw bad(name, 'parameters.shared_memory_byte_size must be given with parameters.shared_memory_region')
  if (!isCount(byteSize)) throw bad(name, `parameters.shared_memory_byte_size must be a non-negative integer, got ${describe(byteSize)}`)
  if (offset !== undefined && !isCount(offset)) throw bad(name, `parameters.shared_memory_offset must be a non-negative integer, got ${describe(offset)}`)
  return { region, offset: offset ?? 0, byteSize }
}

/** Input `input`'s tensor read from `slice`: its size checked, charged to `memory`, then read. */
export function tensorFromShm (input: CheckedInput, slice: RegionSlice, regions: SharedMemoryRegions | undefined, memory: MemoryCharge | undefined): TensorData {
  if (regions === undefined) throw errors.SHM_REGION_NOT_FOUND(slice.region)
  checkByteSize(input, slice.byteSize, 'shared_memory_byte_size')
  memory?.charge(slice.byteSize)
  const bytes = regions.read(`input '${input.name}'`, slice)
  // Numeric: the buffer read is the tensor; BYTES: decoding makes strings, charged on top.
  return tensorFromBytes(input, bytes, 'shared_memory_byte_size', input.size > 0 ? undefined : memory, true)
}

/** Output `name`'s slice, checked against its region before inference runs (a 400 now rather than after). */
export function checkShmOutput (name: string, slice: RegionSlice, regions: SharedMemoryRegions | undefined): RegionSlice {
  if (regions === undefined) throw errors.SHM_REGION_NOT_FOUND(slice.region)
  regions.check(`output '${name}'`, slice)
  return slice
}

/** Writes output `name`'s raw bytes into `slice`; returns the parameters its answer carries. */
export function writeShmOutput (name: string, slice: RegionSlice, bytes: Uint8Array, regions: SharedMemoryRegions | undefined): { shared_memory_region: string, shared_memory_byte_size: number, shared_memory_offset?: number } {
  if (regions === undefined) throw errors.SHM_REGION_NOT_FOUND(slice.region)
  regions.write(`output '${name}'`, slice, bytes)
  return {
    shared_memory_region: slice.region,
    shared_memory_byte_size: bytes.byteLength,
    ...(slice.offset !== 0 ? { shared_memory_offset: slice.offset } : {})
  }
}
