/**
 * The FastAPI + onnxruntime baseline (bench/fastapi/server.py) of the memory section: its
 * virtualenv, cached as `${XDG_CACHE_HOME:-~/.cache}/onnx-sidecar/venv-bench-fastapi-<hash of
 * requirements.txt>` (built once, ~1 min; a partial build is never taken for a finished one),
 * and the server, started like the other baselines.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { request } from 'undici'
import { ROOT } from './env.js'
import { log, pinned, sleep, stopChild, type Server } from './harness.js'

const DIR = path.join(ROOT, 'bench', 'fastapi')
const MARKER = '.installed'

/** The venv's python, built when missing; a string saying why not where it cannot be. */
export function fastapiPython (): { python: string } | { skipped: string } {
  const req = path.join(DIR, 'requirements.txt')
  const hash = createHash('sha256').update(readFileSync(req)).digest('hex').slice(0, 16)
  const cache = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache')
  const dir = path.join(cache, 'onnx-sidecar', `venv-bench-fastapi-${hash}`)
  const python = path.join(dir, 'bin', 'python')
  if (existsSync(path.join(dir, MARKER)) && existsSync(python)) return { python }
  const partial = `${dir}.partial-${process.pid}`
  log(`memory: building the FastAPI baseline's virtualenv in ${dir}`)
  const step = (cmd: string, args: string[]): string | undefined => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000 })
    return r.status === 0 ? undefined : `'${cmd} ${args.join(' ')}' failed (${r.error?.message ?? `exit ${String(r.status)}`}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`
  }
  const failed = step('python3', ['-m', 'venv', partial]) ?? step(path.join(partial, 'bin', 'pip'), ['install', '-q', '-r', req])
  if (failed !== undefined) {
    rmSync(partial, { recursive: true, force: true })
    return { skipped: failed }
  }
  writeFileSync(path.join(partial, MARKER), '')
  rmSync(dir, { recursive: true, force: true })
  renameSync(partial, dir)
  return { python }
}

/** Starts bench/fastapi/server.py on `modelFile` (pinned to `cpu`) and waits until it answers. */
export async function startFastapi (python: string, modelFile: string, cpu?: string): Promise<Server> {
  const [cmd, argv] = pinned(cpu, [python, path.join(DIR, 'server.py'), modelFile])
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OMP_NUM_THREADS: '1' } })
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const port = await new Promise<number>((resolve, reject) => {
    lines.once('line', line => resolve((JSON.parse(line) as { port: number }).port))
    child.once('exit', code => reject(new Error(`FastAPI server exited with code ${code}`)))
  })
  const origin = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    const res = await request(`${origin}/v2/health/ready`).catch(() => undefined)
    await res?.body.dump()
    if (res?.statusCode === 200) break
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('FastAPI server not ready')
    await sleep(100)
  }
  return { child, origin, metricsOrigin: origin, stop: async () => { lines.close(); await stopChild(child) } }
}
