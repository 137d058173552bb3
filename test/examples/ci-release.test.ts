/**
 * examples/ci/release-model.sh, the steps that need no cluster: a candidate version is put
 * next to the live one, checked with `onnx-sidecar check --against` the live version, and
 * only then built into a model image (podman, local storage). A regressed export stops with
 * exit 1 and an incompatible one with exit 2, before any image is built. The export step
 * itself (skl2onnx in a cached virtualenv, then a minute of training) runs in .ci/run, as
 * `release-model.sh --dry-run` without --candidate-dir.
 *
 * Needs `npm run build` first (`npm test` does it): the script runs dist/cli/main.js.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { havePodman, podman, ROOT } from '../fixtures/image/podman.js'

const SCRIPT = path.join(ROOT, 'examples', 'ci', 'release-model.sh')
// The shop's ads v2 (a different model family than v1) moves the mean click probability by
// 0.028; the example pipeline allows 0.05 for it (examples/ci/README.md).
const SHOP_FLAGS = ['--', '--max-probability-shift', '0.05']

interface Run { code: number, stdout: string, stderr: string }

function release (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise(resolve => {
    execFile('bash', [SCRIPT, ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

const scratch = mkdtempSync(path.join(os.tmpdir(), 'onnx-sidecar-ci-release-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
let n = 0
const workDir = (): string => path.join(scratch, `w${++n}`)

t.test('a good candidate passes check; the repository holds live and candidate', async t => {
  const work = workDir()
  const r = await release(['--candidate-dir', 'examples/shop/models-v2/ads/2', '--work', work, '--until', 'check', ...SHOP_FLAGS])
  t.equal(r.code, 0, 'exit 0', { stderr: r.stderr.slice(-2000) })
  t.match(r.stdout, /ads\/2 against ads\/1/, 'the candidate was compared with the live version')
  t.match(r.stdout, /check passed/)
  const ads = path.join(work, 'repository', 'ads')
  t.same(readdirSync(ads).sort(), ['1', '2', 'config.yaml', 'labels.txt'], 'live v1 and candidate v2, the live config and labels')
  t.ok(existsSync(path.join(ads, '1', 'golden', 'expectations.json')), "the model's golden cases became the live version's")
  t.ok(existsSync(path.join(work, 'check.xml')), 'the JUnit report is kept')
  t.notOk(existsSync(path.join(work, 'image-ref')), '--until check builds no image')
})

t.test('flags after -- reach check: the default probability shift fails the shop\'s ads v2', async t => {
  const r = await release(['--candidate-dir', 'examples/shop/models-v2/ads/2', '--work', workDir(), '--until', 'check'])
  t.equal(r.code, 1, 'exit 1: regressed')
  t.match(r.stdout, /FAIL probabilities: probability shift/)
})

t.test('a retrained ads model with halved click probabilities stops at check, exit 1', async t => {
  const work = workDir()
  const r = await release(['--candidate-dir', 'test/fixtures/check/ads-halved/ads/1', '--candidate-version', '2', '--work', work, '--dry-run', ...SHOP_FLAGS])
  t.equal(r.code, 1, 'exit 1: regressed')
  t.match(r.stdout, /FAIL probabilities: calibration/)
  t.match(r.stderr, /the candidate regressed .*nothing was built/)
  t.notOk(existsSync(path.join(work, 'image-ref')), 'no image')
})

t.test('an export with a renamed input stops at check, exit 2', async t => {
  const work = workDir()
  const r = await release(['--candidate-dir', 'test/fixtures/check/ads-renamed/ads/1', '--work', work, '--dry-run', ...SHOP_FLAGS])
  t.equal(r.code, 2, 'exit 2: invalid or incompatible')
  t.match(r.stderr, /invalid or incompatible .*nothing was built/)
  t.notOk(existsSync(path.join(work, 'image-ref')), 'no image')
})

t.test('usage errors exit 64 and name the flag', async t => {
  const bad: Array<[string[], RegExp]> = [
    [['--until', 'deploy'], /--until: 'deploy' is not export, check, image or rollout/],
    [['--candidate-dir', 'examples/shop/models-v2/ads/2'], /the rollout step needs --deployment/],
    [['--deployment', 'shop', '--candidate-dir', 'examples/shop/models-v2/ads/2'], /the rollout step needs --push/],
    [['--candidate-version', 'two', '--dry-run'], /a version is a positive integer, not 'two'/],
    [['--bogus'], /unknown argument '--bogus'/]
  ]
  for (const [args, message] of bad) {
    const r = await release(args)
    t.equal(r.code, 64, `${args.join(' ')}: exit 64`)
    t.match(r.stderr, message, `${args.join(' ')}: says why`)
    t.match(r.stderr, /usage: examples\/ci\/release-model\.sh/, `${args.join(' ')}: prints the usage`)
  }
  const r = await release(['--live', 'no-such-dir', '--dry-run'])
  t.equal(r.code, 2, 'a live repository without the model: exit 2')
  t.match(r.stderr, /--live: no-such-dir\/ads is not a directory/)
})

t.test('the rollout step acts on rollout status\'s exit code (a stand-in CLI records the calls)', async t => {
  const image = 'registry.example.com/models/ads@sha256:' + 'a'.repeat(64)
  const cli = path.join(scratch, 'fake-onnx-sidecar')
  // Records every call; `rollout status` exits with FAKE_DECISION.
  writeFileSync(cli, '#!/usr/bin/env bash\necho "$*" >>"$FAKE_LOG"\n[ "$1 $2" != "rollout status" ] || exit "$FAKE_DECISION"\n')
  chmodSync(cli, 0o755)
  const cases: Array<[number, number, string]> = [
    [0, 0, 'rollout promote shop-ads -n shop'],
    [1, 1, 'rollout abort shop-ads -n shop'],
    [3, 3, 'rollout abort shop-ads -n shop'],
    [2, 2, '']
  ]
  for (const [decision, exit, last] of cases) {
    const log = path.join(scratch, `calls-${decision}.log`)
    const r = await release(['--model-image', image, '--deployment', 'shop-ads', '-n', 'shop', '--canary', '10'],
      { ONNX_SIDECAR: cli, FAKE_LOG: log, FAKE_DECISION: String(decision) })
    t.equal(r.code, exit, `status exits ${decision}: release-model exits ${exit}`, { stderr: r.stderr })
    const calls = readFileSync(log, 'utf8').trim().split('\n')
    t.equal(calls[0], `rollout start shop-ads -n shop --candidate ads:2 --canary 10 --model-image ${image}`, 'starts the candidate with the image')
    t.equal(calls[1], 'rollout status shop-ads -n shop --wait --timeout 10m', 'waits for the decision')
    t.equal(calls[2] ?? '', last, last === '' ? 'an API error changes nothing' : `then: ${last}`)
  }
  const r = await release(['--model-image', 'registry.example.com/models/ads:v2', '--deployment', 'shop-ads'])
  t.equal(r.code, 64, 'a model image without a digest: exit 64')
  t.match(r.stderr, /--model-image: 'registry.example.com\/models\/ads:v2' is not pinned by digest/)
})

t.test('--dry-run builds the model image holding both versions', async t => {
  if (!havePodman()) {
    t.plan(0, 'podman is not installed (apt-get install -y podman runc; .ci/run installs it)')
    return
  }
  const image = `localhost/onnx-sidecar-ci-test/ads:v2-${process.pid}`
  t.teardown(async () => {
    await podman(['image', 'unmount', image]).catch(() => undefined)
    await podman(['rmi', '--force', image]).catch(() => undefined)
  })
  const work = workDir()
  const r = await release(['--candidate-dir', 'examples/shop/models-v2/ads/2', '--work', work, '--dry-run', '--image', image, ...SHOP_FLAGS])
  t.equal(r.code, 0, 'exit 0', { stderr: r.stderr.slice(-2000) })
  t.equal(r.stdout.trim().split('\n').at(-1), image, 'prints the image reference last')
  const mounted = (await podman(['image', 'mount', image])).trim()
  for (const f of ['ads/config.yaml', 'ads/labels.txt', 'ads/1/model.onnx', 'ads/2/model.onnx']) {
    t.ok(existsSync(path.join(mounted, f)), `the image holds ${f}`)
  }
})
