/**
 * `onnx-sidecar check` as CI runs it: the built CLI as a child process, its exit code
 * (0 pass, 1 regressed, 2 invalid or incompatible, 3 usage), its summary and its JUnit report.
 * Run `npm run build` first (npm test does).
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js')
const SHOP = path.join(ROOT, 'examples', 'shop', 'models')
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'check')

function check (...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, [CLI, 'check', ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
    })
  })
}

/** A repository holding a copy of the shop's ads model, for golden files and broken files. */
function adsRepo (t: Test): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'check-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(path.join(SHOP, 'ads'), path.join(dir, 'ads'), { recursive: true })
  return dir
}

t.test('the shop passes: every model loads and its golden cases match', async t => {
  const r = await check(SHOP)
  t.equal(r.code, 0, r.stdout + r.stderr)
  t.match(r.stdout, /ads\/1\n {2}ok {3}load/)
  t.match(r.stdout, /ok {3}golden first 8 rows of examples\/shop\/expectations\/search\.json/)
  t.match(r.stdout, /check passed: 6 passed, 0 failed, 0 invalid \(exit 0\)/)
})

t.test('the shop passes against itself: same answers on the generated sample', async t => {
  const r = await check(SHOP, '--against', SHOP)
  t.equal(r.code, 0, r.stdout)
  t.match(r.stdout, /probabilities: calibration: .*: 1 \(within 1 ± 0\.1\)/)
})

t.test('a retrained ads model whose click probability is halved regresses (exit 1)', async t => {
  const junit = path.join(mkdtempSync(path.join(tmpdir(), 'check-junit-')), 'report.xml')
  t.teardown(() => rmSync(path.dirname(junit), { recursive: true, force: true }))
  const r = await check(path.join(FIXTURES, 'ads-halved'), '--against', SHOP, '--junit', junit)
  t.equal(r.code, 1, r.stdout)
  t.match(r.stdout, /ok {3}signature/)
  t.match(r.stdout, /FAIL probabilities: probability shift: mean absolute probability shift/)
  t.match(r.stdout, /FAIL probabilities: calibration: .*class 1 \(click\): 0\.5 /)
  t.match(r.stdout, /check REGRESSED/)
  const xml = readFileSync(junit, 'utf8')
  t.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="onnx-sidecar check" tests="\d+" failures="[1-9]\d*" errors="0"/)
  t.match(xml, /<testcase classname="ads\/1 against [^"]+" name="probabilities: calibration" time="[\d.]+">\n {6}<failure message="[^"]*click[^"]*" type="regressed">/)
  t.equal(xml.match(/<testsuite /g)?.length, xml.match(/<\/testsuite>/g)?.length)
  t.equal(xml.match(/<testcase /g)?.length, Number(/tests="(\d+)"/.exec(xml)?.[1]))
})

t.test('agreement alone would pass it: the shift and calibration catch the halving', async t => {
  const r = await check(path.join(FIXTURES, 'ads-halved'), '--against', SHOP, '--min-agreement', '0', '-o', 'json')
  t.equal(r.code, 1)
  const doc = JSON.parse(r.stdout) as { exitCode: number, suites: Array<{ cases: Array<{ name: string, outcome: string }> }> }
  t.equal(doc.exitCode, 1)
  const failed = doc.suites.flatMap(s => s.cases).filter(c => c.outcome === 'fail').map(c => c.name)
  t.same(failed, ['probabilities: probability shift', 'probabilities: calibration'])
})

t.test('a model the baseline does not have is new, not broken', async t => {
  const base = adsRepo(t)
  const r = await check(SHOP, '--against', base)
  t.equal(r.code, 0, r.stdout)
  t.match(r.stdout, /search\/1 against .*\n {2}ok {3}signature: a new model: the baseline has none to compare with/)
  t.match(r.stdout, /ads\/1 against .*: ads\/1 \(256 rows generated, seed 1\)/)
})

t.test('an export with a renamed input is incompatible (exit 2) and named', async t => {
  const r = await check(path.join(FIXTURES, 'ads-renamed'), '--against', SHOP)
  t.equal(r.code, 2, r.stdout)
  t.match(r.stdout, /INVALID signature: incompatible: input 'input' is missing from the candidate \(renamed\? the candidate has 'features'\)/)
})

t.test('--against a version of the same model', async t => {
  const dir = adsRepo(t)
  cpSync(path.join(FIXTURES, 'ads-halved', 'ads', '1'), path.join(dir, 'ads', '2'), { recursive: true })
  rmSync(path.join(dir, 'ads', 'golden'), { recursive: true })
  const r = await check(dir, '--against', 'ads:1')
  t.equal(r.code, 1, r.stdout)
  t.match(r.stdout, /ads\/2 against ads\/1/)
  t.equal((await check(dir, '--against', '1')).code, 1)
})

t.test('a score output is judged by its relative difference, on a --sample too', async t => {
  const dir = mkdtempSync(path.join(tmpdir(), 'check-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(path.join(ROOT, 'test', 'fixtures', 'repo', 'add'), path.join(dir, 'add'), { recursive: true })
  // add/1: y = x + 1, add/2: y = x + 2; generated x in [0, 1]: |2 - 1| / mean |x + 1| = 1 / 1.5
  let r = await check(dir, '--against', '1')
  t.equal(r.code, 1, r.stdout)
  t.match(r.stdout, /FAIL y: relative difference: mean \|candidate - baseline\| \/ mean \|baseline\| 0\.6\d+ \(at most 0\.01\)/)
  t.equal((await check(dir, '--against', '1', '--max-score-diff', '1')).code, 0)
  const sample = path.join(dir, 'sample.jsonl')
  writeFileSync(sample, [99, 999].map(v => JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [v, v, v, v] }] })).join('\n'))
  r = await check(dir, '--against', 'add:1', '--sample', sample, '--max-score-diff', '0.01')
  t.equal(r.code, 0, r.stdout)
  t.match(r.stdout, /add\/2 against add\/1 \(2 rows from .*sample\.jsonl\)/)
  writeFileSync(sample, JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }))
  r = await check(dir, '--against', 'add:1', '--sample', sample)
  t.equal(r.code, 2, r.stdout)
  t.match(r.stdout, /INVALID replay sample: request 0: the baseline refuses it: /)
})

t.test('a golden value that differs regresses (exit 1) and says where', async t => {
  const dir = adsRepo(t)
  const file = path.join(dir, 'ads', 'golden', 'expectations.json')
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { outputs: Array<{ name: string, data: number[][] }> }
  const probs = doc.outputs.find(o => o.name === 'probabilities') as { data: number[][] }
  ;(probs.data[0] as number[])[1] = 0.2
  writeFileSync(file, JSON.stringify(doc))
  const r = await check(dir)
  t.equal(r.code, 1, r.stdout)
  t.match(r.stdout, /FAIL golden .*: output 'probabilities': 1 of 16 values differ \(first at \[1\]: got 0\.13099924, expected 0\.2/)
})

t.test('a golden file that cannot be used is invalid (exit 2)', async t => {
  const dir = adsRepo(t)
  writeFileSync(path.join(dir, 'ads', 'golden', 'broken.json'), '{"inputs": [')
  let r = await check(dir)
  t.equal(r.code, 2, r.stdout)
  t.match(r.stdout, /INVALID golden files: .*broken\.json: not valid JSON/)
  writeFileSync(path.join(dir, 'ads', 'golden', 'broken.json'), JSON.stringify({ inputs: [{ name: 'nope', datatype: 'FP32', shape: [1, 8], data: [0, 0, 0, 0, 0, 0, 0, 0] }], outputs: [{ name: 'label', data: [0] }] }))
  r = await check(dir)
  t.equal(r.code, 2, r.stdout)
  t.match(r.stdout, /INVALID golden broken\.json#0: .*the sidecar refuses this request: .*nope/)
})

t.test('a broken model file is invalid (exit 2)', async t => {
  const dir = adsRepo(t)
  mkdirSync(path.join(dir, 'ads', '2'))
  writeFileSync(path.join(dir, 'ads', '2', 'model.onnx'), 'not an onnx model')
  const r = await check(dir)
  t.equal(r.code, 2, r.stdout)
  t.match(r.stdout, /ads\/1\n {2}ok {3}load/)
  t.match(r.stdout, /ads\/2\n {2}INVALID load: .*model\.onnx: ONNX Runtime cannot load it/)
})

t.test('a config.yaml that does not parse is invalid (exit 2)', async t => {
  const dir = adsRepo(t)
  writeFileSync(path.join(dir, 'ads', 'config.yaml'), 'max_batch_size: -1\n')
  const r = await check(dir)
  t.equal(r.code, 2, r.stdout)
  t.match(r.stdout, /INVALID load: .*config\.yaml: key 'max_batch_size'/)
})

t.test('usage errors exit 3', async t => {
  const [none, flag, against, two, help] = await Promise.all([check(), check(SHOP, '--no-such-flag'), check(SHOP, '--against', 'not-a-dir-nor-version'), check(SHOP, SHOP), check('--help')])
  t.equal(none.code, 3)
  t.equal(flag.code, 3)
  t.match(flag.stderr, /unknown flag '--no-such-flag'/)
  t.equal(against.code, 3)
  t.match(against.stderr, /--against: 'not-a-dir-nor-version' is neither a directory/)
  t.equal(two.code, 3)
  t.equal(help.code, 0)
  t.match(help.stdout, /--max-calibration-drift/)
})
