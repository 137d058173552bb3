/**
 * `onnx-sidecar doctor [POD] [-n NAMESPACE] [-o text|json]`: reads a live cluster through
 * the Kubernetes API (fetch.ts), runs every check over what it read (diagnose.ts) and says
 * what is wrong and what to do (report.ts). Exit 0: nothing wrong (warnings may be
 * printed); 1: something is; 2: a usage error or no API server to ask (one line on stderr).
 */
import { ConfigError, helpText, processEnv, readConfig } from '../../common/config.js'
import type { KubeConfig } from '@kubernetes/client-node'
import { currentNamespace, loadKubeConfig, type KubeTarget } from '../kube-client.js'
import { diagnose } from './diagnose.js'
import { ClusterError, fetchSnapshot } from './fetch.js'
import { doctorOptions } from './options.js'
import { EXIT, exitCode, jsonReport, textReport } from './report.js'

const USAGE = `usage: onnx-sidecar doctor [POD] [-n NAMESPACE] [-o text|json] [--kubeconfig FILE] [--context NAME] [--release-namespace NS]

Reads the cluster and says, for a namespace or one pod, what keeps onnx-sidecar from
working and what to do (docs/troubleshooting.md). Exit 0: nothing wrong; 1: something is;
2: a usage error, or the API server cannot be reached.`

export interface DoctorIo {
  stdout: { write: (s: string) => unknown }
  stderr: { write: (s: string) => unknown }
  env?: Readonly<Record<string, string | undefined>>
  /** The time the findings are judged at (tests fix it); now by default. */
  now?: Date
}

/** What @kubernetes/client-node's loadFromDefault falls back to when it finds no kubeconfig and no service account. */
export function isFallback (kc: KubeConfig): boolean {
  const cluster = kc.getCurrentCluster()
  return cluster?.name === 'cluster' && cluster.server === 'http://localhost:8080'
}

export async function runDoctor (argv: string[], io: DoctorIo): Promise<number> {
  const table = doctorOptions()
  try {
    const opts = readConfig(table, argv, io.env ?? processEnv())
    if (opts.help) {
      io.stdout.write(helpText(USAGE, table))
      return EXIT.ok
    }
    if (opts._.length > 1) throw new ConfigError(`one pod at most, got ${opts._.length}: ${opts._.join(' ')}`)
    const target: KubeTarget = {}
    if (opts.kubeconfig !== '') target.kubeconfig = opts.kubeconfig
    if (opts.context !== '') target.context = opts.context
    let kc
    try {
      kc = loadKubeConfig(target)
    } catch (err) {
      throw new ClusterError(`cannot read the kubeconfig${target.kubeconfig === undefined ? '' : ` ${target.kubeconfig}`}: ${(err as Error).message.split('\n')[0] ?? ''}`)
    }
    if (isFallback(kc)) throw new ClusterError('no kubeconfig found: pass --kubeconfig, set $KUBECONFIG, or create ~/.kube/config')
    if (kc.getCurrentCluster() === null) {
      throw new ClusterError(target.context !== undefined ? `context ${target.context} is not in the kubeconfig` : 'the kubeconfig has no current context with a cluster')
    }
    const namespace = opts.namespace !== '' ? opts.namespace : currentNamespace(kc)
    const pod = opts._[0]
    const snapshot = await fetchSnapshot(kc, {
      namespace,
      ...(pod === undefined ? {} : { pod }),
      ...(opts.releaseNamespace === '' ? {} : { releaseNamespace: opts.releaseNamespace }),
      ...(io.now === undefined ? {} : { now: io.now })
    })
    const d = diagnose(snapshot)
    io.stdout.write(opts.output === 'json' ? jsonReport(d) : textReport(d, pod === undefined ? `namespace ${namespace}` : `pod ${namespace}/${pod}`))
    return exitCode(d)
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ClusterError) {
      io.stderr.write(`onnx-sidecar doctor: ${err.message}\n`)
      return EXIT.usage
    }
    throw err
  }
}

export async function doctorCommand (argv: string[]): Promise<number> {
  return await runDoctor(argv, { stdout: process.stdout, stderr: process.stderr })
}
