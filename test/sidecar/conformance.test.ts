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
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { EXAMPLE_REPO, ROOT, startSidecar } from '../fixtures/sidecar.js'
import { listenOnSocket } from '../../sidecar/sidecar.js'
import { describe, ensureVenv, run, tail } from '../fixtures/conformance/venv.js'

// A cold run creates the virtualenv and downloads wheels: allow up to 10 minutes.
t.setTimeout(600_000)

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'conformance')
const SCRIPT = path.join(FIXTURES, 'triton_check.py')
const HELDOUT = path.join(ROOT, 'test', 'fixtures', 'models', 'iris-heldout.json')
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
