/**
 * Conformance: drive the running sidecar with Triton's stock Python clients
 * (`tritonclient[grpc,http]` from PyPI, pinned in test/fixtures/conformance/requirements.txt),
 * over REST and over gRPC (TCP and the Unix socket), with the same checks.
 *
 * The client is installed once into a virtualenv outside the repository, cached under
 * `${XDG_CACHE_HOME:-~/.cache}/onnx-sidecar/venv-tritonclient-<hash of requirements.txt>`,
 * so a warm run only starts the sidecar and runs test/fixtures/conformance/triton_check.py.
 * The script prints `plan NAME...` and then `ok NAME` / `not ok NAME: why` per check; each
 * check becomes one assertion here.
 *
 * Python 3.11+ with the venv module is required (CI has it): without it this test fails.
 * CONFORMANCE_PYTHON overrides the interpreter used to create the virtualenv.
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { EXAMPLE_REPO, ROOT, startSidecar } from '../fixtures/sidecar.js'
import { listenOnSocket } from '../../sidecar/sidecar.js'

// A cold run creates the virtualenv and downloads wheels: allow up to 10 minutes.
t.setTimeout(600_000)

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'conformance')
const REQUIREMENTS = path.join(FIXTURES, 'requirements.txt')
const SCRIPT = path.join(FIXTURES, 'triton_check.py')
const HELDOUT = path.join(ROOT, 'test', 'fixtures', 'models', 'iris-heldout.json')
const PYTHON = process.env.CONFORMANCE_PYTHON || 'python3'
const MARKER = '.onnx-sidecar-complete'

interface Ran { code: number | null, signal: string | null, stdout: string, stderr: string, error?: NodeJS.ErrnoException }

function run (file: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  return new Promise(resolve => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env }, (error, stdout, stderr) => {
      const err = error as (NodeJS.ErrnoException & { code?: unknown, signal?: string | null }) | null
      resolve({
        code: err == null ? 0 : (typeof err.code === 'number' ? err.code : null),
        signal: err?.signal ?? null,
        stdout: String(stdout),
        stderr: String(stderr),
        ...(err != null && typeof err.code !== 'number' ? { error: err } : {})
      })
    })
  })
}

function tail (text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

function describe (what: string, r: Ran): string {
  const how = r.error != null ? `${r.error.code ?? ''} ${r.error.message}` : r.signal != null ? `killed by ${r.signal}` : `exit code ${r.code}`
  return `${what} failed (${how.trim()})\n--- stdout ---\n${tail(r.stdout)}\n--- stderr ---\n${tail(r.stderr)}`
}

function venvPythonOf (dir: string): string {
  return process.platform === 'win32' ? path.join(dir, 'Scripts', 'python.exe') : path.join(dir, 'bin', 'python')
}

/** Create (or reuse) the cached virtualenv; returns its python, or throws with a clear message. */
async function ensureVenv (): Promise<{ python: string, dir: string, created: boolean }> {
  const requirements = await readFile(REQUIREMENTS)
  const hash = createHash('sha256').update(requirements).digest('hex').slice(0, 16)
  const cacheHome = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  const dir = path.join(cacheHome, 'onnx-sidecar', `venv-tritonclient-${hash}`)
  if (existsSync(path.join(dir, MARKER)) && existsSync(venvPythonOf(dir))) {
    return { python: venvPythonOf(dir), dir, created: false }
  }

  const version = await run(PYTHON, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], 60_000)
  if (version.error?.code === 'ENOENT') {
    throw new Error(`'${PYTHON}' was not found on PATH: the Triton client conformance test needs Python >= 3.11 with the venv module (set CONFORMANCE_PYTHON to use another interpreter)`)
  }
  if (version.code !== 0) throw new Error(describe(`'${PYTHON}' -c 'import sys'`, version))
  const [major, minor] = version.stdout.trim().split('.').map(Number)
  if (major !== 3 || (minor ?? 0) < 11) {
    throw new Error(`'${PYTHON}' is Python ${version.stdout.trim()}; the pinned requirements (numpy >= 2.4) need Python >= 3.11 (set CONFORMANCE_PYTHON to use another interpreter)`)
  }

  // Build beside the final path and rename into place, so an interrupted or
  // concurrent build never leaves a half-installed venv that looks complete.
  await mkdir(path.dirname(dir), { recursive: true })
  const partial = `${dir}.partial-${process.pid}`
  await rm(partial, { recursive: true, force: true })
  try {
    const venv = await run(PYTHON, ['-m', 'venv', partial], 120_000)
    if (venv.code !== 0) throw new Error(describe(`'${PYTHON} -m venv ${partial}' (is the venv module / python3-venv installed?)`, venv))
    const env = { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_NO_INPUT: '1', PYTHONNOUSERSITE: '1' }
    const pip = await run(venvPythonOf(partial), ['-m', 'pip', 'install', '--no-input', '-r', REQUIREMENTS], 540_000, env)
    if (pip.code !== 0) throw new Error(describe(`pip install -r ${path.relative(ROOT, REQUIREMENTS)} into ${partial}`, pip))
    const probe = await run(venvPythonOf(partial), ['-c', 'import tritonclient.http, tritonclient.grpc, geventhttpclient, numpy'], 120_000)
    if (probe.code !== 0) throw new Error(describe('importing tritonclient.http and .grpc in the new virtualenv', probe))
    await writeFile(path.join(partial, MARKER), `${new Date().toISOString()}\n`)
    if (existsSync(path.join(dir, MARKER))) {
      // Another run finished first; use its venv.
      await rm(partial, { recursive: true, force: true })
    } else {
      await rm(dir, { recursive: true, force: true })
      await rename(partial, dir)
    }
  } catch (err) {
    await rm(partial, { recursive: true, force: true })
    throw err
  }
  // The venv was built at `partial`; re-resolve its python at the final location.
  const python = venvPythonOf(dir)
  const check = await run(python, ['-c', 'import tritonclient.http, tritonclient.grpc'], 120_000)
  if (check.code !== 0) throw new Error(describe(`importing tritonclient from ${dir}`, check))
  return { python, dir, created: true }
}

let venvPython: string | undefined

t.test('virtualenv with tritonclient[grpc,http]', async t => {
  try {
    const venv = await ensureVenv()
    venvPython = venv.python
    t.pass(`${venv.created ? 'created' : 'reused'} ${venv.dir}`)
  } catch (err) {
    t.fail((err as Error).message)
  }
})

/** Runs triton_check.py against `target`; one assertion per planned check. */
async function tritonCheck (t: Test, protocol: 'http' | 'grpc', target: string): Promise<void> {
  if (venvPython == null) {
    t.fail('no virtualenv with tritonclient (see the failure above)')
    return
  }
  const env = { ...process.env, PYTHONNOUSERSITE: '1', PYTHONDONTWRITEBYTECODE: '1' }
  const r = await run(venvPython, [SCRIPT, protocol, target, HELDOUT], 120_000, env)
  const lines = r.stdout.split('\n').map(l => l.trimEnd()).filter(l => l !== '')
  const planLine = lines.find(l => l.startsWith('plan '))
  if (planLine == null) {
    t.fail(describe(`triton_check.py ${protocol} printed no plan`, r))
    return
  }
  const plan = planLine.slice('plan '.length).split(' ').filter(Boolean)
  t.ok(plan.length > 0, 'the check script plans some checks')
  for (const name of plan) {
    const ok = lines.includes(`ok ${name}`)
    const notOk = lines.find(l => l === `not ok ${name}` || l.startsWith(`not ok ${name}:`))
    if (ok) t.pass(name)
    else if (notOk != null) t.fail(`${name}: ${notOk.slice(`not ok ${name}`.length).replace(/^:\s*/, '')}`, { stderr: tail(r.stderr, 40) })
    else t.fail(`${name}: no result line (script ended early)`, { stderr: tail(r.stderr, 40) })
  }
  if (r.code === 0) t.pass(`triton_check.py ${protocol} exits 0`)
  else t.fail(describe(`triton_check.py ${protocol}`, r))
}

t.test("Triton's Python clients against the running sidecar", async t => {
  const sidecar = await startSidecar({ repository: EXAMPLE_REPO, grpc: true })
  t.teardown(sidecar.close)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'onnx-sidecar-conformance-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const sockets = await listenOnSocket(sidecar.sidecar, dir, { grpc: true })

  await t.test('tritonclient.http over REST', t => tritonCheck(t, 'http', sidecar.url))
  await t.test('tritonclient.grpc over gRPC', t => tritonCheck(t, 'grpc', sidecar.grpcAddress))
  await t.test('tritonclient.grpc over the Unix socket', t => tritonCheck(t, 'grpc', `unix:${sockets.grpc}`))
})
