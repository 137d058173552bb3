import t from 'tap'
import { Readable } from 'node:stream'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { readFileSync } from 'node:fs'
import { INJECT_DEFAULTS, INJECT_OPTIONS, runInject } from '../../injector/inject-command.js'
import { TESTDATA, FIXTURES } from '../fixtures/injector/helpers.js'
import { readConfig } from '../../common/config.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

async function run (argv: string[], stdin = '', env: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await runInject(argv, {
    stdin: Readable.from([Buffer.from(stdin)]),
    stdout: { write: (s: string) => { stdout += s } },
    stderr: { write: (s: string) => { stderr += s } },
    env
  })
  return { code, stdout, stderr }
}

const config = `${FIXTURES}injection-config.yaml`

t.test('-f FILE prints the injected manifests; warnings go to stderr', async t => {
  const r = await run(['-f', `${TESTDATA}daemonset.yaml`, '--config', config])
  t.equal(r.code, 0)
  t.equal(r.stdout, readFileSync(`${TESTDATA}daemonset.yaml.injected`, 'utf8').replace(/^# warning: .*\n/gm, ''))
  t.match(r.stderr, /^warning: DaemonSet\/edge-scorer \(document 1\): hostNetwork: true/)
})

t.test('-f - reads stdin; the config can come from ONNX_SIDECAR_CONFIG', async t => {
  const r = await run(['-f', '-'], readFileSync(`${TESTDATA}job.yaml`, 'utf8'), { ONNX_SIDECAR_CONFIG: config })
  t.equal(r.code, 0)
  t.equal(r.stdout, readFileSync(`${TESTDATA}job.yaml.injected`, 'utf8'))
  const positional = await run([`${TESTDATA}job.yaml`, '--config', config])
  t.equal(positional.stdout, r.stdout, 'the file may also be given without -f')
})

t.test('failures exit non-zero with the reason on stderr', async t => {
  const invalid = await run(['-f', `${TESTDATA}invalid-annotation.yaml`])
  t.equal(invalid.code, 1)
  t.equal(invalid.stdout, '')
  t.match(invalid.stderr, /^onnx-sidecar inject: Deployment\/broken \(document 1\): annotation onnx-sidecar.io\/model: "..\/etc\/passwd"/)
  const missing = await run(['-f', `${TESTDATA}nope.yaml`])
  t.same(missing, { code: 1, stdout: '', stderr: `onnx-sidecar inject: cannot read ${TESTDATA}nope.yaml: no such file\n` }, 'a missing file is one clear line, not a raw ENOENT')
  const dir = await run(['-f', TESTDATA])
  t.same(dir, { code: 1, stdout: '', stderr: `onnx-sidecar inject: cannot read ${TESTDATA}: is a directory\n` })
  const badConfig = await run(['-f', `${TESTDATA}job.yaml`, '--config', `${TESTDATA}job.yaml`])
  t.match(badConfig, { code: 1, stderr: /injection config .*job.yaml: \(top level\) must NOT have additional properties/ })
  t.match(await run([]), { code: 2, stderr: /-f FILE or -f - \(stdin\) is required/ })
  t.match(await run(['--help']), { code: 0, stdout: /usage: onnx-sidecar inject -f FILE\|-.*\n[\s\S]*--config[\s\S]*ONNX_SIDECAR_CONFIG/ })
})

t.test('--kube-version: a model image is denied on an API server older than 1.35', async t => {
  const old = await run(['-f', `${TESTDATA}model-image.yaml`, '--kube-version', 'v1.34.0'])
  t.equal(old.code, 1)
  t.equal(old.stdout, '')
  t.match(old.stderr, /^onnx-sidecar inject: Deployment\/iris \(document 1\): annotation onnx-sidecar.io\/model-image: ".*" needs Kubernetes 1\.35 or later for image volumes .* but the API server is v1\.34\.0 \(the injector's --kube-version\)/)
  const current = await run(['-f', `${TESTDATA}model-image.yaml`, '--config', config], '', { ONNX_SIDECAR_KUBE_VERSION: 'v1.35.0' })
  t.equal(current.code, 0, current.stderr)
  t.equal(current.stdout, readFileSync(`${TESTDATA}model-image.yaml.injected`, 'utf8'))
  await t.rejects(run(['-f', `${TESTDATA}model-image.yaml`, '--kube-version', 'new']), /flag --kube-version: 'new' is not a Kubernetes version/)
  t.match(await run(['--help']), { stdout: /--kube-version\n.*denied below 1\.35.*\(default: unknown\)\s+\[env ONNX_SIDECAR_KUBE_VERSION\]/ })
})

t.test('the real CLI, as a user runs it', async t => {
  const cli = (args: string[]): ReturnType<typeof spawnSync> => spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 })
  const ok = cli(['inject', '-f', `${TESTDATA}deployment.yaml`, '--config', config])
  t.equal(ok.status, 0, String(ok.stderr))
  t.equal(ok.stdout, readFileSync(`${TESTDATA}deployment.yaml.injected`, 'utf8'))
  const bad = cli(['inject', '-f', `${TESTDATA}port-clash.yaml`])
  t.equal(bad.status, 1)
  t.match(String(bad.stderr), /port 8500 is already used by container 'legacy'/)
  const flag = cli(['webhook'])
  t.equal(flag.status, 2)
  t.match(String(flag.stderr), /^onnx-sidecar webhook: --tls-cert and --tls-key are required/)
})

t.test('the option table takes its defaults from INJECT_DEFAULTS, frozen', async t => {
  t.ok(Object.isFrozen(INJECT_DEFAULTS))
  const read = new Map(Object.entries(readConfig(INJECT_OPTIONS, [], {})))
  for (const [key, value] of Object.entries(INJECT_DEFAULTS)) t.equal(read.get(key), value, key)
})
