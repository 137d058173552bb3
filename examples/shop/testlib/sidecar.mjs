// Test helper for the shop's Node tests: starts a real onnx-sidecar (the repository's
// dist/, so `npm run build` first) on free ports, serving examples/shop/models.
import { spawnLogged } from './process.mjs'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

export const SHOP = fileURLToPath(new URL('..', import.meta.url))
export const REPO = path.resolve(SHOP, '..', '..')
const MAIN = path.join(REPO, 'dist', 'cli', 'main.js')

/**
 * Starts `onnx-sidecar serve --model <models>` and resolves once /v2/health/ready is 200.
 * Returns { url, grpc, stop() }. `repository` defaults to examples/shop/models.
 */
export async function startSidecar ({ models, repository = path.join(SHOP, 'models'), timeoutMs = 60_000 }) {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build in ${REPO} first`)
  let serve
  const serving = new Promise((resolve, reject) => { serve = { resolve, reject } })
  const { child, log, stop } = spawnLogged(process.execPath, [MAIN, 'serve', '--model-repository', repository, '--model', models,
    '--port', '0', '--grpc-port', '0', '--metrics-port', '0', '--metrics-host', '127.0.0.1',
    '--workers', '1', '--threads', '1', '--poll-interval', '500', '--log-level', 'info'], {
    onRecord: rec => { if (rec.msg === 'onnx-sidecar serving') serve.resolve({ url: rec.inference, grpc: rec.grpc }) }
  })
  child.on('exit', () => serve.reject(new Error(`sidecar exited before serving:\n${log.join('')}`)))
  try {
    const { url, grpc } = await serving
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const ok = await fetch(`${url}/v2/health/ready`).then(r => r.ok, () => false)
      if (ok) break
      if (Date.now() > deadline) throw new Error(`sidecar not ready after ${timeoutMs} ms:\n${log.join('')}`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    return { url, grpc, stop, log }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Reads one of examples/shop/expectations/*.json. */
export async function expectations (name) {
  const { readFile } = await import('node:fs/promises')
  return JSON.parse(await readFile(path.join(SHOP, 'expectations', `${name}.json`), 'utf8'))
}

export async function catalog () {
  const { readFile } = await import('node:fs/promises')
  return JSON.parse(await readFile(path.join(SHOP, 'catalog.json'), 'utf8'))
}
