/**
 * Reads a Triton-layout model repository from disk:
 *
 *   <repo>/<model>/config.yaml           optional
 *   <repo>/<model>/labels.txt            optional
 *   <repo>/<model>/<version>/model.onnx  version: a positive integer
 *
 * A scan returns what is on disk now, with a fingerprint per file so the model manager
 * can tell what changed since the last scan. Nothing here loads a model.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises'
import path from 'node:path'
import { MODEL_NAME } from '../common/contract.js'

export interface ScannedVersion {
  version: number
  file: string
  /** Changes whenever the file is replaced or rewritten (inode, size, mtime). */
  fingerprint: string
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

/** Reads one model directory; undefined when it does not exist. */
export async function scanModel (repo: string, name: string): Promise<ScannedModel | undefined> {
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
    versions.push({ version: Number(entry), file, fingerprint: `${st.ino}:${st.size}:${st.mtimeMs}` })
  }
  versions.sort((a, b) => a.version - b.version)
  return {
    name,
    dir,
    configText,
    labels,
    settingsFingerprint: `${configText ?? ''}\u0000${labelsText ?? ''}`,
    versions
  }
}
