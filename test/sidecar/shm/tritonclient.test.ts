/**
 * Triton's stock Python clients use the sidecar's system shared memory unchanged:
 * test/fixtures/shm/triton_shm_check.py creates regions in /dev/shm with
 * `tritonclient.utils.shared_memory`, registers them, infers iris with the input in one
 * region and the outputs in another (tritonclient.http, then tritonclient.grpc against
 * both gRPC servers) and reads the results with `get_contents_as_numpy`.
 *
 * The client comes from the cached virtualenv the conformance test uses
 * (test/fixtures/conformance/venv.ts), with the same rule: Python 3.11+ is required.
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { EXAMPLE_REPO, ROOT, startSidecar } from '../../fixtures/sidecar.js'
import { describe, ensureVenv, run, tail } from '../../fixtures/conformance/venv.js'

// A cold run creates the virtualenv and downloads wheels: allow up to 10 minutes.
t.setTimeout(600_000)

const SCRIPT = path.join(ROOT, 'test', 'fixtures', 'shm', 'triton_shm_check.py')

async function check (t: Test, python: string, protocol: 'http' | 'grpc', target: string): Promise<void> {
  const r = await run(python, [SCRIPT, protocol, target], 120_000, { ...process.env, PYTHONNOUSERSITE: '1', PYTHONDONTWRITEBYTECODE: '1' })
  const lines = r.stdout.split('\n').map(l => l.trimEnd())
  const plan = lines.find(l => l.startsWith('plan '))?.slice('plan '.length).split(' ').filter(Boolean)
  if (plan === undefined) {
    t.fail(describe(`triton_shm_check.py ${protocol} printed no plan`, r))
    return
  }
  for (const name of plan) {
    const notOk = lines.find(l => l.startsWith(`not ok ${name}`))
    if (lines.includes(`ok ${name}`)) t.pass(name)
    else t.fail(`${name}: ${notOk ?? 'no result line (script ended early)'}`, { stderr: tail(r.stderr, 40) })
  }
  t.equal(r.code, 0, `triton_shm_check.py ${protocol} exits 0`)
}

t.test('tritonclient shared memory utilities against the sidecar', { skip: fs.existsSync('/dev/shm') ? false : 'no /dev/shm on this machine' }, async t => {
  let python: string
  try {
    python = (await ensureVenv()).python
  } catch (err) {
    t.fail((err as Error).message)
    return
  }
  for (const grpcServer of ['http2', 'grpc-js'] as const) {
    const s = await startSidecar({ repository: EXAMPLE_REPO, grpc: true, grpcServer })
    t.teardown(s.close)
    if (grpcServer === 'http2') await t.test('tritonclient.http', t => check(t, python, 'http', s.url))
    await t.test(`tritonclient.grpc (${grpcServer})`, t => check(t, python, 'grpc', s.grpcAddress))
    t.equal(s.sidecar.sharedMemory.size, 0, 'the script unregistered every region')
  }
  const left = fs.readdirSync('/dev/shm').filter(f => f.startsWith('onnx-sidecar-test-'))
  t.same(left, [], 'the script destroyed its regions')
})
