/**
 * The replay sample `--against` runs through both versions: request bodies read from
 * `--sample`, or generated from the baseline's signature (models/sample-rows.ts).
 */
import { readFile } from 'node:fs/promises'
import type { ModelSignature } from '../models/signature.js'
import { GoldenFormatError } from './golden.js'
import { SampleError, sampleRequests } from '../models/sample-rows.js'

export { DEFAULT_RANGE } from '../models/sample-rows.js'

/** `rows` rows for `sig` as REST request bodies (models/sample-rows.ts); throws GoldenFormatError for an input no value can be made up for (BYTES). */
export function generateSample (sig: ModelSignature, rows: number, seed: number): Array<Record<string, unknown>> {
  try {
    return sampleRequests(sig, rows, seed)
  } catch (err) {
    if (err instanceof SampleError) throw new GoldenFormatError(`${err.message}; give one with --sample`)
    throw err
  }
}

/** `--sample FILE`: one request body, an array of them, or one per line (JSON lines). */
export async function readSample (file: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(file, 'utf8').catch((err: Error) => { throw new GoldenFormatError(`--sample ${file}: ${err.message}`) })
  let docs: unknown[]
  try {
    const doc: unknown = JSON.parse(text)
    docs = Array.isArray(doc) ? doc : [doc]
  } catch {
    try {
      docs = text.split(/\r?\n/).filter(l => l.trim() !== '').map(l => JSON.parse(l) as unknown)
    } catch (err) {
      throw new GoldenFormatError(`--sample ${file}: neither JSON nor JSON lines: ${(err as Error).message}`)
    }
  }
  if (docs.length === 0) throw new GoldenFormatError(`--sample ${file}: no request bodies`)
  return docs.map((d, i) => {
    if (typeof d !== 'object' || d === null || Array.isArray(d)) throw new GoldenFormatError(`--sample ${file}: body ${i} is not an object`)
    return d as Record<string, unknown>
  })
}
