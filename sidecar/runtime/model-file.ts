/**
 * Reading a model file for ONNX Runtime. The pool keeps no copy of a model's bytes: a
 * worker that replaces a dead one reads the file again and checks it against the digest
 * taken at the first load, so a file changed on disk since is refused, not served under
 * the old version's name.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

/** SHA-256 of the content, hex. */
export function digestOf (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * The file's bytes in an ArrayBuffer of their own (what ONNX Runtime wants), and their
 * digest; throws when `expected` is given and the content differs.
 */
export function readModelFile (file: string, expected?: string): { bytes: Uint8Array, digest: string } {
  let bytes: Uint8Array = readFileSync(file)
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = new Uint8Array(bytes) // a small file may share Node's buffer pool
  const digest = digestOf(bytes)
  if (expected !== undefined && digest !== expected) {
    throw new Error(`${file} changed on disk since the version was loaded (sha256 ${digest.slice(0, 12)}…, loaded ${expected.slice(0, 12)}…)`)
  }
  return { bytes, digest }
}
