/** The `doctor` command's options: flags, environment variables, defaults (docs/troubleshooting.md). */
import { commonOptions, parse, type Option } from '../../common/config.js'

/** A Kubernetes name (namespace, context): anything but empty. */
function name (what: string) {
  return (raw: string): string => {
    if (raw.trim() === '') throw new Error(`${what} is empty`)
    return raw.trim()
  }
}

export function doctorOptions () {
  return {
    namespace: { flag: '--namespace', short: '-n', env: '', description: 'the namespace to diagnose', default: '', defaultText: 'the kubeconfig context\'s namespace, else default', parse: name('the namespace') } as Option<string>,
    output: { flag: '--output', short: '-o', env: '', description: 'text or json ({ findings, checked })', default: 'text', parse: parse.oneOf('text', 'json') } as Option<'text' | 'json'>,
    kubeconfig: { flag: '--kubeconfig', env: '', description: 'the kubeconfig file', default: '', defaultText: '$KUBECONFIG, else ~/.kube/config, else the pod\'s service account', parse: name('the kubeconfig path') } as Option<string>,
    context: { flag: '--context', env: '', description: 'the kubeconfig context to use', default: '', defaultText: 'the current context', parse: name('the context') } as Option<string>,
    releaseNamespace: { flag: '--release-namespace', env: '', description: 'the namespace the chart is installed in: only its webhook counts when several are registered', default: '', defaultText: 'any', parse: name('the release namespace') } as Option<string>,
    help: commonOptions().help
  }
}
