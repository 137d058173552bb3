/**
 * What `npm pack` gives a user (docs/install.md): a tarball that holds only what users need,
 * installs into an app outside the checkout, puts `onnx-sidecar` on PATH (`npx onnx-sidecar
 * …`), and lets the app `import … from 'onnx-sidecar/client'` and get a prediction from a
 * sidecar started from the installed package with its bundled example models.
 *
 * Needs `npm run build` first (`npm test` does it). No network: the app installs with
 * `--offline` from npm's cache. A plain `npm install --offline <tarball>` would need the
 * registry's package documents (`npm ci` caches only the tarballs), so the app gets a lock
 * file made from this repository's package-lock.json (the production entries, with their
 * resolved URLs and integrity): npm then installs the versions this repository is tested
 * with, from the cache. The app denies onnxruntime-node's install script in its own
 * `allowScripts`, as docs/install.md tells users to: npm 11 runs a dependency's install
 * scripts unless the installing project denies them (a package's own `allowScripts` does not
 * reach its consumers), and that script downloads CUDA binaries from api.nuget.org.
 */
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from '../fixtures/sidecar.js'

const run = promisify(execFile)

interface PackResult { name: string, version: string, filename: string, integrity: string, files: Array<{ path: string }> }
interface LockEntry { dev?: boolean, link?: boolean, [key: string]: unknown }

const work = mkdtempSync(path.join(os.tmpdir(), 'onnx-sidecar-pack-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

const packed = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 })
const pack = (JSON.parse(packed.stdout) as PackResult[])[0]!
const files = pack.files.map(f => f.path)

t.test('the tarball holds the build, the example models and the documents, nothing else', async t => {
  for (const part of ['cli', 'sidecar', 'injector', 'common', 'client']) {
    t.ok(files.some(f => f.startsWith(`dist/${part}/`) && f.endsWith('.js')), `dist/${part}/ is in the package`)
  }
  for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/cli/main.js', 'dist/client/index.js', 'dist/client/index.d.ts',
    'dist/sidecar/grpc/oip.proto', 'models/iris/1/model.onnx', 'models/iris/config.yaml', 'models/digits/1/model.onnx']) {
    t.ok(files.includes(f), `${f} is in the package`)
  }
  const unwanted = files.filter(f => !/^(dist|models)\//.test(f) && !['package.json', 'README.md', 'LICENSE'].includes(f))
  t.same(unwanted, [], 'only dist/, models/, package.json, README.md and LICENSE')
  t.same(files.filter(f => f.endsWith('.map')), [], 'no source maps (the TypeScript sources they point to are not shipped)')
  t.same(files.filter(f => f.endsWith('.ts') && !f.endsWith('.d.ts')), [], 'no TypeScript sources')
  // dist/ is not cleaned by `npm run build`: a file whose source was renamed or removed would ship.
  const stale = files.filter(f => f.startsWith('dist/') && f.endsWith('.js') && !existsSync(path.join(ROOT, f.slice('dist/'.length).replace(/\.js$/, '.ts'))))
  t.same(stale, [], 'every compiled file has its source (else: rm -rf dist && npm run build, then pack)')
})

t.test('installed outside the checkout: the CLI on PATH and onnx-sidecar/client in an app', async t => {
  const app = path.join(work, 'app')
  mkdirSync(app)
  const tarball = `file:../${pack.filename}`
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }
  const self = lock.packages['']!
  const packages: Record<string, unknown> = {
    '': { name: 'app', version: '1.0.0', dependencies: { 'onnx-sidecar': tarball } },
    'node_modules/onnx-sidecar': {
      version: pack.version, resolved: tarball, integrity: pack.integrity, license: self.license,
      dependencies: self.dependencies, bin: self.bin, engines: self.engines
    }
  }
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key !== '' && entry.dev !== true && entry.link !== true) packages[key] = entry
  }
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({
    name: 'app', version: '1.0.0', private: true, type: 'module',
    dependencies: { 'onnx-sidecar': tarball },
    allowScripts: { 'onnxruntime-node': false, protobufjs: false }
  }, null, 2))
  writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify({ name: 'app', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2))

  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false' }
  delete env.ONNXRUNTIME_NODE_INSTALL
  const install = await run('npm', ['install', '--offline', '--no-audit', '--no-fund'], { cwd: app, env, maxBuffer: 16 * 1024 * 1024 })
  const said = (install.stdout + install.stderr).split('\n').filter(l => /\b(warn|error|ERR!)\b/i.test(l))
  t.same(said, [], 'npm install prints no warning or error')
  t.notOk(existsSync(path.join(app, 'node_modules', 'onnx-sidecar', 'test')), 'no tests in the installed package')

  const help = await run('npx', ['--no-install', 'onnx-sidecar', '--help'], { cwd: app, env })
  t.match(help.stdout, /^usage: onnx-sidecar <command>/, 'npx onnx-sidecar --help')

  writeFileSync(path.join(app, 'pod.yaml'), [
    'apiVersion: v1', 'kind: Pod', 'metadata:', '  name: app', '  annotations:', '    onnx-sidecar.io/model: iris',
    'spec:', '  containers:', '    - name: app', '      image: app:1', ''
  ].join('\n'))
  const injected = await run('npx', ['--no-install', 'onnx-sidecar', 'inject', '-f', 'pod.yaml'], { cwd: app, env })
  t.match(injected.stdout, /initContainers:\n\s+- name: onnx-sidecar\n\s+image: \S+onnx-sidecar:/, 'npx onnx-sidecar inject -f pod.yaml adds the sidecar')

  // `serve` from the installed bin with the bundled models, on free loopback ports.
  const bin = path.join(app, 'node_modules', '.bin', 'onnx-sidecar')
  const models = path.join(app, 'node_modules', 'onnx-sidecar', 'models')
  const serve = spawn(bin, ['serve', '--model-repository', models, '--model', 'iris', '--port', '0', '--grpc-port', 'off',
    '--metrics-host', '127.0.0.1', '--metrics-port', '0'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>(resolve => serve.once('exit', code => resolve(code)))
  t.teardown(async () => { if (serve.exitCode === null) { serve.kill('SIGTERM'); await exited } })
  let log = ''
  serve.stderr.on('data', (b: Buffer) => { log += b.toString() })
  const url = await new Promise<string>((resolve, reject) => {
    serve.stdout.on('data', (b: Buffer) => {
      log += b.toString()
      const m = /"inference":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(log)
      if (m !== null) resolve(m[1]!)
    })
    void exited.then(code => reject(new Error(`serve exited (${code}): ${log}`)))
  })

  writeFileSync(path.join(app, 'predict.mjs'), `
import { SidecarClient } from 'onnx-sidecar/client'
const client = new SidecarClient({ url: process.argv[2] })
for (let i = 0; i < 100 && !(await client.modelReady('iris')); i++) await new Promise(r => setTimeout(r, 100))
const res = await client.infer('iris', [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }])
console.log(JSON.stringify(res))
await client.close()
`)
  const predicted = await run(process.execPath, ['predict.mjs', url], { cwd: app, env })
  const res = JSON.parse(predicted.stdout) as { model_name: string, outputs: Array<{ name: string, data: unknown[] }> }
  t.equal(res.model_name, 'iris', 'the app gets an answer through onnx-sidecar/client')
  t.ok(res.outputs.length > 0 && res.outputs.every(o => o.data.length > 0), 'with outputs')

  serve.kill('SIGTERM')
  t.equal(await exited, 0, 'serve stops cleanly on SIGTERM')
})
