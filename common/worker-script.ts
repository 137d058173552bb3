/**
 * Where a worker thread's script is. Worker threads always run compiled JavaScript:
 * loaders such as tsx (tests, `tsx cli/main.ts`) do not reach them, so a module run
 * from its TypeScript source points at its twin under dist/ (`npm test` builds first).
 */
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** The compiled script `name` (without extension) beside the calling module. */
export function workerScript (callerUrl: string, name: string): URL {
  const beside = new URL(`./${name}.js`, callerUrl)
  if (!callerUrl.endsWith('.ts')) return beside
  return pathToFileURL(path.join(ROOT, 'dist', path.relative(ROOT, fileURLToPath(beside))))
}
