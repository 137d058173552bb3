/**
 * Triton's system shared-memory extension: the registry of regions a client has
 * registered, and the reads and writes of tensors at offsets in them.
 *
 * A region is a POSIX shared-memory object by key (`/name` → `<dir>/name`, `dir` being
 * `/dev/shm`): the pod's own shm, nothing else. A key is one path segment (never `.` or
 * `..`, no `/` after the leading one, no NUL), opened with O_NOFOLLOW and required to be a
 * regular file, so a key cannot name anything outside that directory. The file's real
 * size is checked when the region is registered (its offset + byte_size lie within it) and
 * again at each use (a file truncated since is an error, not a short read).
 *
 * Node has no mmap: a region holds an open file descriptor, and a tensor is read or
 * written with pread/pwrite at its offset (`fs.readSync` / `fs.writeSync` with a
 * position). A read is one copy out of the page cache, into a buffer the caller has
 * charged to the request memory first; a write is one copy into it. Regions are released
 * (their descriptors closed) on unregister and on `close()` (shutdown).
 */
import fs from 'node:fs'
import path from 'node:path'
import { errors } from '../core/errors.js'
import { checkLength, MAX_NAME_BYTES, shown } from '../core/client-strings.js'

/** Regions registered at once: each holds one file descriptor. */
export const MAX_REGIONS = 256
/** Longest key: NAME_MAX (255) for the file name, plus the leading '/'. */
const MAX_KEY_BYTES = 256

/** A region as the status endpoints report it (Triton's field names). */
export interface RegionStatus {
  name: string
  key: string
  offset: number
  byte_size: number
}

interface Region extends RegionStatus {
  fd: number
  writable: boolean
}

/** Where in a region a tensor lies, as an input's or output's parameters say. */
export interface RegionSlice {
  region: string
  /** Bytes into the region (not into the file). */
  offset: number
  byteSize: number
}

export interface SharedMemoryOptions {
  /** The directory POSIX shm objects live in (default `/dev/shm`; tests point it elsewhere). */
  dir?: string
}

/** The file name under `dir` for `key`, or a 400 naming what is wrong with it. */
export function fileNameOfKey (key: unknown): string {
  if (typeof key !== 'string' || key === '') throw errors.BAD_REQUEST('key must be a non-empty string (a POSIX shared memory key such as "/region0")')
  checkLength('key', key, MAX_KEY_BYTES)
  const name = key.startsWith('/') ? key.slice(1) : key
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\u0000')) {
    throw errors.SHM_BAD_KEY(shown(key))
  }
  return name
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0

export class SharedMemoryRegions {
  readonly dir: string
  #regions = new Map<string, Region>()
  #closed = false

  constructor (opts: SharedMemoryOptions = {}) {
    this.dir = opts.dir ?? '/dev/shm'
  }

  /** Registered regions right now. */
  get size (): number {
    return this.#regions.size
  }

  /**
   * Registers `name` for `byteSize` bytes at `offset` of the shm object `key`. Throws a
   * 400 for a bad name, key, offset or size, a key that does not open or a file too small,
   * and a 409 for a name already registered; then nothing changed.
   */
  register (name: string, key: unknown, offset: unknown, byteSize: unknown): void {
    if (this.#closed) throw errors.SHUTTING_DOWN()
    if (name === '') throw errors.BAD_REQUEST('the shared memory region name must be non-empty')
    checkLength('the shared memory region name', name, MAX_NAME_BYTES)
    const file = fileNameOfKey(key)
    if (!isCount(offset)) throw errors.BAD_REQUEST(`offset must be a non-negative integer, got ${shown(JSON.stringify(offset) ?? String(offset))}`)
    if (!isCount(byteSize)) throw errors.BAD_REQUEST(`byte_size must be a non-negative integer, got ${shown(JSON.stringify(byteSize) ?? String(byteSize))}`)
    if (this.#regions.has(name)) throw errors.SHM_REGION_EXISTS(name)
    if (this.#regions.size >= MAX_REGIONS) throw errors.SHM_TOO_MANY(MAX_REGIONS)
    const { fd, writable } = this.#open(key as string, file)
    try {
      const st = fs.fstatSync(fd)
      if (!st.isFile()) throw errors.SHM_OPEN_FAILED(key as string, 'it is not a shared memory object (a regular file)')
      if (offset + byteSize > st.size) throw errors.SHM_RANGE(`region '${name}'`, `offset ${offset} + byte_size ${byteSize} is past the end of '${key as string}' (${st.size} bytes)`)
    } catch (err) {
      fs.closeSync(fd)
      throw err
    }
    this.#regions.set(name, { name, key: key as string, offset, byte_size: byteSize, fd, writable })
  }

  #open (key: string, file: string): { fd: number, writable: boolean } {
    const where = path.join(this.dir, file)
    const { O_RDWR, O_RDONLY, O_NOFOLLOW } = fs.constants
    try {
      return { fd: fs.openSync(where, O_RDWR | O_NOFOLLOW), writable: true }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // Readable but not writable (another user's 0644 file): inputs only.
      if (code === 'EACCES' || code === 'EROFS') {
        try {
          return { fd: fs.openSync(where, O_RDONLY | O_NOFOLLOW), writable: false }
        } catch {}
      }
      throw errors.SHM_OPEN_FAILED(key, code === 'ENOENT' ? 'no such shared memory object' : code === 'ELOOP' ? 'it is a symbolic link' : code === 'EACCES' ? 'permission denied (the sidecar\'s user cannot read it)' : String(code))
    }
  }

  /** Unregisters `name` (every region when undefined), closing its descriptor; an unknown name is no error (Triton's rule). */
  unregister (name?: string): void {
    const names = name === undefined ? [...this.#regions.keys()] : [name]
    for (const n of names) {
      const region = this.#regions.get(n)
      if (region === undefined) continue
      this.#regions.delete(n)
      fs.closeSync(region.fd)
    }
  }

  /** Every region, or the one named (a 400 when it is not registered). */
  status (name?: string): RegionStatus[] {
    const pick = (r: Region): RegionStatus => ({ name: r.name, key: r.key, offset: r.offset, byte_size: r.byte_size })
    if (name === undefined) return [...this.#regions.values()].map(pick)
    return [pick(this.#get(name))]
  }

  #get (name: string): Region {
    const region = this.#regions.get(name)
    if (region === undefined) throw errors.SHM_REGION_NOT_FOUND(name)
    return region
  }

  /** The region of `slice` and where in its file the slice starts, after the range checks. */
  #locate (what: string, slice: RegionSlice): { region: Region, position: number } {
    const region = this.#get(slice.region)
    if (slice.offset + slice.byteSize > region.byte_size) {
      throw errors.SHM_RANGE(what, `shared_memory_offset ${slice.offset} + shared_memory_byte_size ${slice.byteSize} is past the end of region '${region.name}' (${region.byte_size} bytes)`)
    }
    const position = region.offset + slice.offset
    const fileSize = fs.fstatSync(region.fd).size
    if (position + slice.byteSize > fileSize) {
      throw errors.SHM_RANGE(what, `region '${region.name}' ends past its shared memory object '${region.key}', now ${fileSize} bytes (was it truncated?)`)
    }
    return { region, position }
  }

  /** Throws, as a read or write would, when `slice` does not lie within a registered region and its file. */
  check (what: string, slice: RegionSlice): void {
    this.#locate(what, slice)
  }

  /**
   * The `slice.byteSize` bytes of the slice, copied into a new buffer of their own (offset 0,
   * so typed arrays can view it); the caller has charged them. `what` names the tensor.
   */
  read (what: string, slice: RegionSlice): Uint8Array {
    const { region, position } = this.#locate(what, slice)
    const out = Buffer.allocUnsafeSlow(slice.byteSize)
    let done = 0
    while (done < out.byteLength) {
      const n = fs.readSync(region.fd, out, done, out.byteLength - done, position + done)
      if (n === 0) throw errors.SHM_RANGE(what, `region '${region.name}' ended after ${done} of ${slice.byteSize} bytes`)
      done += n
    }
    return out
  }

  /** Writes `bytes` at the start of the slice, which must hold them. `what` names the tensor. */
  write (what: string, slice: RegionSlice, bytes: Uint8Array): void {
    if (bytes.byteLength > slice.byteSize) {
      throw errors.SHM_RANGE(what, `shared memory size specified with the request (${slice.byteSize} bytes) should be at least ${bytes.byteLength} bytes to hold the results`)
    }
    const { region, position } = this.#locate(what, { ...slice, byteSize: bytes.byteLength })
    if (!region.writable) throw errors.SHM_RANGE(what, `region '${region.name}' is read-only to the sidecar (its shared memory object is not writable by the sidecar's user)`)
    let done = 0
    while (done < bytes.byteLength) done += fs.writeSync(region.fd, bytes, done, bytes.byteLength - done, position + done)
  }

  /** Releases every region and refuses new ones (shutdown). */
  close (): void {
    this.#closed = true
    this.unregister()
  }
}
