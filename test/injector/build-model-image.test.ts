/**
 * scripts/build-model-image.sh: a model repository directory becomes an OCI image whose
 * files are the repository, for onnx-sidecar.io/model-image. Argument checks run anywhere;
 * the build runs where podman is installed (it is on the project's machines).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { cpSync, chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SCRIPT = `${ROOT}scripts/build-model-image.sh`

function run (cmd: string, args: string[]): { status: number, stdout: string, stderr: string } {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 120_000 })
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}
const script = (...args: string[]): ReturnType<typeof run> => run('bash', [SCRIPT, ...args])

t.test('arguments and directories that cannot make a model image are refused before any build', async t => {
  const dir = t.testdir({ 'not-a-repo': { 'README.md': 'x' } })
  t.match(script(), { status: 2, stderr: /usage: .*build-model-image\.sh <repo-dir> <image-ref> \[--push\]/ })
  t.match(script('models'), { status: 2 })
  t.match(script('models', 'localhost/m:1', '--pull'), { status: 2 }, 'only --push is a third argument')
  t.match(script(`${dir}/nope`, 'localhost/m:1'), { status: 1, stderr: /nope is not a directory/ })
  t.match(script(`${dir}/not-a-repo`, 'localhost/m:1'), { status: 1, stderr: /holds no <model>\/<version>\/model\.onnx: not a model repository/ })
  t.match(script('models', `localhost/m@sha256:${'a'.repeat(64)}`), { status: 1, stderr: /name the image with a tag \(name:tag\), not a digest/ })
  mkdirSync(`${dir}/private/iris/1`, { recursive: true })
  writeFileSync(`${dir}/private/iris/1/model.onnx`, 'x')
  chmodSync(`${dir}/private/iris/1/model.onnx`, 0o600)
  t.match(script(`${dir}/private`, 'localhost/m:1'), { status: 1, stderr: /not readable by every user, so not by the sidecar \(chmod -R a\+rX .*\): .*iris\/1\/model\.onnx/ })
})

const podman = run('sh', ['-c', 'command -v podman']).status === 0
t.test('the image holds the repository as it is, and the same files give the same image', { skip: podman ? false : 'podman is not installed' }, async t => {
  const dir = t.testdir({})
  cpSync(`${ROOT}test/fixtures/repo/add`, `${dir}/repo/add`, { recursive: true })
  chmodSync(`${dir}/repo`, 0o755)
  const tag = `localhost/onnx-sidecar-test-models:${process.pid}`
  t.teardown(() => { run('podman', ['rmi', '--force', tag, `${tag}-again`]) })
  const built = script(`${dir}/repo`, tag)
  t.equal(built.status, 0, built.stderr)
  t.equal(built.stdout, `${tag}\n`, 'prints the reference; the build log goes to stderr')
  t.match(built.stderr, /STEP 1\/2: FROM scratch\s+STEP 2\/2: COPY \. \//, 'the two-line Containerfile')

  const mount = run('podman', ['image', 'mount', tag])
  t.equal(mount.status, 0, mount.stderr)
  t.teardown(() => { run('podman', ['image', 'unmount', tag]) })
  const files = run('find', [mount.stdout.trim(), '-mindepth', '1', '-printf', '%P %m\n']).stdout.trim().split('\n').sort()
  t.same(files, ['add 755', 'add/1 755', 'add/1/model.onnx 644', 'add/2 755', 'add/2/model.onnx 644', 'add/config.yaml 644'], 'the repository layout at the image root, readable by the sidecar')

  const again = script(`${dir}/repo`, `${tag}-again`)
  t.equal(again.status, 0, again.stderr)
  const id = (ref: string): string => run('podman', ['image', 'inspect', '--format', '{{.Id}}', ref]).stdout.trim()
  t.match(id(tag), /^[a-f0-9]{64}$/)
  t.equal(id(`${tag}-again`), id(tag), 'a rebuild of the same files is the same image')
  t.match(run('podman', ['image', 'inspect', '--format', '{{.Created}}', tag]).stdout, /^1970-01-01 00:00:00/, 'built with a fixed timestamp, so another machine builds the same image too')
})
