#!/usr/bin/env node
/**
 * `onnx-sidecar <command>`: one binary, four commands (README.md, docs/configuration.md).
 * Each command module owns its option table and returns an exit code.
 *
 * SIGTERM and SIGINT are recorded from the first statement (common/early-signals.ts, which
 * imports nothing): everything else is imported dynamically, after the handlers exist.
 */
import { installEarlySignals, restoreDefaultSignals } from '../common/early-signals.js'
installEarlySignals()

const USAGE = `usage: onnx-sidecar <command> [options]

Commands:
  serve     serve a model repository over the Open Inference Protocol (the sidecar)
  webhook   the injector: HTTPS AdmissionReview v1 endpoint
  inject    offline injection of manifests: inject -f FILE|-
  check     the CI gate: load a model repository as serve does, run its golden cases, compare --against a baseline
  rollout   one rollout per Deployment: rollout start|status|promote|abort DEPLOYMENT
  doctor    read a live cluster and say what keeps injection or the sidecar from working: doctor [POD] [-n NS]

Run 'onnx-sidecar <command> --help' for the options of a command.
`

type Command = (argv: string[]) => Promise<number>

/** How long a failed command's open handles may still flush (stderr, logs) before the process exits: 0.5 seconds. */
const FAILED_EXIT_DELAY_MS = 500

const commands: Record<string, () => Promise<Command>> = {
  serve: async () => {
    const { holdYoungGeneration } = await import('../common/young-generation.js')
    holdYoungGeneration() // before the module graph loads; serve releases it once the models are in (common/young-generation.ts)
    return (await import('../sidecar/serve-command.js')).serveCommand
  },
  inject: async () => (await import('../injector/inject-command.js')).injectCommand,
  webhook: async () => (await import('../injector/webhook-command.js')).webhookCommand,
  check: async () => (await import('../sidecar/check/check-command.js')).checkCommand,
  rollout: async () => await clusterCommand('rollout', async () => (await import('../cluster/rollout/rollout-command.js')).rolloutCommand),
  doctor: async () => await clusterCommand('doctor', async () => (await import('../cluster/doctor/doctor-command.js')).doctorCommand)
}

/**
 * The container image leaves out the commands that talk to a cluster (cluster/ and
 * @kubernetes/client-node, 24 MB of the 80 MB budget: Dockerfile): it runs the sidecar and
 * the injector. There they are one clear line instead of a module-not-found trace.
 */
async function clusterCommand (name: string, load: () => Promise<Command>): Promise<Command> {
  try {
    return await load()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err
    return async () => {
      process.stderr.write(`onnx-sidecar ${name}: not in this installation (the container image holds only serve, webhook, inject and check); run it from the npm package: npm install -g onnx-sidecar-<version>.tgz (docs/install.md)\n`)
      return 2
    }
  }
}

/** The commands that run until signalled and stop cleanly (exit 0) on an early signal too. */
const SERVERS = new Set(['serve', 'webhook'])

async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || !SERVERS.has(name)) restoreDefaultSignals()
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE)
    return name === undefined ? 2 : 0
  }
  const load = commands[name]
  if (load === undefined) {
    process.stderr.write(`onnx-sidecar: unknown command '${name}'\n\n${USAGE}`)
    return 2
  }
  try {
    return await (await load())(rest)
  } catch (err) {
    const { ConfigError } = await import('../common/config.js')
    if (err instanceof ConfigError) {
      process.stderr.write(`onnx-sidecar ${name}: ${err.message}\n`)
      return 2
    }
    throw err
  }
}

function finish (code: number): void {
  process.exitCode = code
  // A finished command lets the event loop drain (so piped stdout is flushed); a failed
  // one must not linger because some handle (a worker thread, a socket) is still open.
  if (code !== 0) setTimeout(() => process.exit(code), FAILED_EXIT_DELAY_MS)
}

main(process.argv.slice(2)).then(finish, (err: unknown) => {
  process.stderr.write(`onnx-sidecar: ${(err as Error).stack ?? String(err)}\n`)
  finish(1)
})
