/**
 * Reads a Triton-layout model repository from disk:
 *
 *   <repo>/<model>/config.yaml           optional
 *   <repo>/<model>/labels.txt            optional
 *   <repo>/<model>/<version>/model.onnx  version: a positive integer
 *
 * A scan returns what is on disk now, with a fingerprint of each model file's content so
 * the model manager can tell what changed since the last scan (a `touch` changes nothing).
 * Nothing here loads a model.
 */
import { createHash } from 'node:crypto'
import { createReadStream, type Stats } from 'node:fs'
import { readdir, readFile, realpath, stat } from 'node:fs/promises'
import path from 'node:path'
import { MODEL_NAME } from '../../common/contract.js'

export interface ScannedVersion {
  version: number
  file: string
  /**
   * SHA-256 of the file's content (hex, as the workers' digest): the same bytes rewritten,
   * touched or renamed into place keep it. A file that cannot be read gets one made of its
   * inode, size and modification time, so loading it is tried (and reports why).
   */
  fingerprint: string
}

/** Read size while hashing a model file (1 MiB): few event-loop turns for big files, little memory. */
const HASH_CHUNK_BYTES = 1024 * 1024

/**
 * Content fingerprints of model files, remembered per model version with the stat they were
 * taken at: a file is hashed again only when its path, inode, size or times change, so a
 * rescan of an unchanged repository reads no model bytes, and a `touch` costs one hash.
 */
export class FingerprintCache {
  /** By `<model>/<version>`: one entry per version on disk. */
  #byVersion = new Map<string, { stat: string, digest: string }>()

  async of (model: string, version: number, file: string, st: Stats): Promise<string | undefined> {
    const id = `${model}/${version}`
    const key = `${file}\u0000${statKey(st)}`
    const known = this.#byVersion.get(id)
    if (known !== undefined && known.stat === key) return known.digest
    let digest: string
    try {
      digest = await hashFile(file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined // gone since the stat
      return `unreadable:${statKey(st)}` // loading it is tried, and says why it fails
    }
    // Rewritten while it was read, the digest may mix two contents: not remembered, so the next scan hashes it again.
    const after = await stat(file).catch(() => undefined)
    if (after !== undefined && statKey(after) === statKey(st)) this.#byVersion.set(id, { stat: key, digest })
    return digest
  }

  /** Forgets the versions of `model` that are not on disk any more. */
  keepOnly (model: string, versions: number[]): void {
    for (const id of this.#byVersion.keys()) {
      const slash = id.lastIndexOf('/')
      if (id.slice(0, slash) === model && !versions.includes(Number(id.slice(slash + 1)))) this.#byVersion.delete(id)
    }
  }
}

function statKey (st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`
}

async function hashFile (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: HASH_CHUNK_BYTES })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

export interface ScannedModel {
  name: string
  dir: string
  configText: string | undefined
  labels: string[] | undefined
  /** Changes whenever config.yaml or labels.txt changes. */
  settingsFingerprint: string
  versions: ScannedVersion[]
}

async function readOptional (file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** Directory names of the models in the repository (hidden entries and plain files are skipped). */
export async function listModels (repo: string): Promise<string[]> {
  const entries = await readdir(repo, { withFileTypes: true })
  const names: string[] = []
  for (const e of entries) {
    if (!MODEL_NAME.test(e.name)) continue
    // Kubernetes projects volumes through symlinks (..data -> ..2024_…): follow them.
    if (e.isDirectory() || (e.isSymbolicLink() && (await stat(path.join(repo, e.name)).catch(() => undefined))?.isDirectory() === true)) {
      names.push(e.name)
    }
  }
  return names.sort()
}

/**
 * Reads one model directory; undefined when it does not exist. Pass the same `fingerprints`
 * to every scan so unchanged files are not hashed again.
 */
export async function scanModel (repo: string, name: string, fingerprints = new FingerprintCache()): Promise<ScannedModel | undefined> {
  let dir: string
  let entries: string[]
  try {
    // Resolve symlinks once, so the whole scan reads one generation even if Kubernetes
    // flips the `..data` symlink of a projected volume halfway through.
    dir = await realpath(path.join(repo, name))
    entries = await readdir(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw err
  }
  const configText = await readOptional(path.join(dir, 'config.yaml'))
  const labelsText = await readOptional(path.join(dir, 'labels.txt'))
  const labels = labelsText?.split(/\r?\n/).map(l => l.trim())
  while (labels !== undefined && labels.length > 0 && labels[labels.length - 1] === '') labels.pop()

  const versions: ScannedVersion[] = []
  for (const entry of entries) {
    if (!/^[1-9]\d{0,8}$/.test(entry)) continue
    const file = path.join(dir, entry, 'model.onnx')
    const st = await stat(file).catch(() => undefined)
    if (st === undefined || !st.isFile()) continue
    const fingerprint = await fingerprints.of(name, Number(entry), file, st)
    if (fingerprint === undefined) continue
    versions.push({ version: Number(entry), file, fingerprint })
  }
  versions.sort((a, b) => a.version - b.version)
  fingerprints.keepOnly(name, versions.map(v => v.version))
  return {
    name,
    dir,
    configText,
    labels,
    settingsFingerprint: `${configText ?? ''}\u0000${labelsText ?? ''}`,
    versions
  }
}
