/**
 * `onnx-sidecar inject -f FILE|-`: offline injection, like `istioctl kube-inject`.
 * The injected manifests go to stdout, warnings and errors to stderr; an invalid
 * manifest or annotation exits 1.
 */
import { readFile } from 'node:fs/promises'
import { readConfig, helpText, parse, processEnv, type Option } from '../common/config.js'
import { InjectorError } from './errors.js'
import { loadInjectionConfig } from './injection-config.js'
import { injectManifests } from './manifests.js'
import { kubeVersionOption } from './kube-version.js'

/** inject's defaults, read by its option table (and so `--help` and docs/configuration.md) and the tests. */
export const INJECT_DEFAULTS = Object.freeze({
  file: '', // none: the first positional argument, else required
  config: '' // built-in injection defaults
})

export const INJECT_OPTIONS = {
  file: { flag: '--filename', short: '-f', env: '', description: 'manifest file to inject (YAML or JSON, multi-document), - for stdin', default: INJECT_DEFAULTS.file, parse: parse.string } as Option<string>,
  config: { flag: '--config', env: 'ONNX_SIDECAR_CONFIG', description: 'injection config file (YAML or JSON); built-in defaults without it', default: INJECT_DEFAULTS.config, defaultText: 'built-in defaults', parse: parse.string } as Option<string>,
  kubeVersion: kubeVersionOption(),
  help: { flag: '--help', short: '-h', env: '', description: 'show this help', default: false, boolean: true, parse: parse.bool } as Option<boolean>
}

/** Why the manifest file cannot be read, in words (the errno codes `readFile` throws for a user's mistake). */
const READ_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  ENOTDIR: 'a part of the path is not a directory'
}

const USAGE = 'usage: onnx-sidecar inject -f FILE|- [--config FILE] [--kube-version V]'

export interface InjectIo {
  stdin: NodeJS.ReadableStream
  stdout: { write: (s: string) => unknown }
  stderr: { write: (s: string) => unknown }
  env: Readonly<Record<string, string | undefined>>
}

async function readAll (stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
  return Buffer.concat(chunks).toString('utf8')
}

export async function runInject (argv: string[], io: InjectIo): Promise<number> {
  const opts = readConfig(INJECT_OPTIONS, argv, io.env)
  if (opts.help) {
    io.stdout.write(helpText(USAGE, INJECT_OPTIONS))
    return 0
  }
  const file = opts.file !== '' ? opts.file : opts._[0]
  if (file === undefined || file === '') {
    io.stderr.write(`onnx-sidecar inject: -f FILE or -f - (stdin) is required\n${USAGE}\n`)
    return 2
  }
  try {
    const config = loadInjectionConfig(opts.config)
    const text = file === '-' ? await readAll(io.stdin) : await readFile(file, 'utf8')
    const result = injectManifests(text, config, opts.kubeVersion === undefined ? {} : { kubeVersion: opts.kubeVersion })
    for (const w of result.warnings) io.stderr.write(`warning: ${w}\n`)
    io.stdout.write(result.output)
    return 0
  } catch (err) {
    if (err instanceof InjectorError) {
      io.stderr.write(`onnx-sidecar inject: ${err.message}\n`)
      return 1
    }
    const reason = READ_ERRORS[(err as NodeJS.ErrnoException).code ?? '']
    if (reason !== undefined) {
      io.stderr.write(`onnx-sidecar inject: cannot read ${file}: ${reason}\n`)
      return 1
    }
    throw err
  }
}

export async function injectCommand (argv: string[]): Promise<number> {
  return await runInject(argv, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: processEnv() })
}
