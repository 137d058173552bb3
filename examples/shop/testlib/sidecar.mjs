// Test helper for the shop's Node tests: starts a real onnx-sidecar (the repository's
// dist/, so `npm run build` first) on free ports, serving examples/shop/models.
import { spawn } from 'node:child_process'
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
  const child = spawn(process.execPath, [MAIN, 'serve', '--model-repository', repository, '--model', models,
    '--port', '0', '--grpc-port', '0', '--metrics-port', '0', '--metrics-host', '127.0.0.1',
    '--workers', '1', '--threads', '1', '--poll-interval', '500', '--log-level', 'info'],
  { stdio: ['ignore', 'pipe', 'pipe'] })
  const log = []
  let exited = null
  child.on('exit', (code, signal) => { exited = { code, signal } })
  const serving = new Promise((resolve, reject) => {
    let buf = ''
    child.stdout.on('data', chunk => {
      buf += chunk
      let nl
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        log.push(line)
        try {
          const rec = JSON.parse(line)
          if (rec.msg === 'onnx-sidecar serving') resolve({ url: rec.inference, grpc: rec.grpc })
        } catch {}
      }
    })
    child.stderr.on('data', chunk => log.push(String(chunk)))
    child.on('exit', () => reject(new Error(`sidecar exited before serving:\n${log.join('\n')}`)))
  })
  const stop = async () => {
    if (exited !== null) return
    const done = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGTERM')
    await done
  }
  try {
    const { url, grpc } = await serving
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const ok = await fetch(`${url}/v2/health/ready`).then(r => r.ok, () => false)
      if (ok) break
      if (Date.now() > deadline) throw new Error(`sidecar not ready after ${timeoutMs} ms:\n${log.join('\n')}`)
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
