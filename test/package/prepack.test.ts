/**
 * `npm pack` and `npm publish` run package.json's `prepack`, which must remove dist/ before
 * it builds: tsc never deletes a compiled file whose source was renamed or removed, and
 * such a file would ship. Runs in a scratch copy of package.json whose `build` script is
 * replaced by a stand-in that writes dist/cli/main.js (tsc itself is npm test's pretest),
 * so the test takes a second and the dist/ other tests use is left alone. `npm pack
 * --dry-run` still runs prepack.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from '../fixtures/sidecar.js'

const run = promisify(execFile)

interface PackResult { files: Array<{ path: string }> }
interface Manifest { scripts: Record<string, string>, [key: string]: unknown }

t.test('npm pack rebuilds dist/: stale compiled files are not packed', async t => {
  const copy = mkdtempSync(path.join(os.tmpdir(), 'onnx-sidecar-prepack-'))
  t.teardown(() => rmSync(copy, { recursive: true, force: true }))
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Manifest
  t.ok(manifest.scripts.prepack, 'package.json has a prepack script')
  manifest.scripts.build = 'node -e "require(\'node:fs\').mkdirSync(\'dist/cli\',{recursive:true});require(\'node:fs\').writeFileSync(\'dist/cli/main.js\',\'\')"'
  writeFileSync(path.join(copy, 'package.json'), JSON.stringify(manifest, null, 2))
  // What an earlier build left behind: a command since removed, and a whole folder.
  mkdirSync(path.join(copy, 'dist', 'cli'), { recursive: true })
  mkdirSync(path.join(copy, 'dist', 'old-folder'), { recursive: true })
  writeFileSync(path.join(copy, 'dist', 'cli', 'removed-command.js'), 'export {}\n')
  writeFileSync(path.join(copy, 'dist', 'old-folder', 'index.js'), 'export {}\n')

  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false' }
  const packed = await run('npm', ['pack', '--dry-run', '--json'], { cwd: copy, env, maxBuffer: 16 * 1024 * 1024, timeout: 60_000 })
  const files = (JSON.parse(packed.stdout) as PackResult[])[0]!.files.map(f => f.path)
  t.notOk(files.includes('dist/cli/removed-command.js'), 'a compiled file without its source is not packed')
  t.same(files.filter(f => f.startsWith('dist/old-folder/')), [], 'nor a folder of them')
  t.notOk(existsSync(path.join(copy, 'dist', 'cli', 'removed-command.js')), 'prepack removed it from dist/')
  t.ok(files.includes('dist/cli/main.js'), 'the fresh build is packed')
})
