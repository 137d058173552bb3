import { expect } from '../lib.js'
import { APP_NS, kubectlRaw, getJson, type Json } from '../context.js'
import { APP_IMAGE } from '../images.js'

/** The namespace enforces Pod Security restricted: a non-compliant pod is refused, the injected ones were admitted. */
export async function checkPodSecurity (): Promise<string> {
  const ns = await getJson('namespace', APP_NS)
  const level = ns.metadata.labels?.['pod-security.kubernetes.io/enforce']
  expect(level === 'restricted', `namespace ${APP_NS} enforces ${String(level)}, not restricted`)
  const r = await kubectlRaw(['run', 'not-restricted', '-n', APP_NS, `--image=${APP_IMAGE}`, '--restart=Never', '--command', '--', 'sleep', '1'])
  expect(r.code !== 0 && /violates PodSecurity "restricted/.test(r.stderr), `a pod without a restricted security context was not refused: ${r.stderr}${r.stdout}`)
  const injected = (await getJson('pods', '-n', APP_NS)).items.filter((p: Json) => p.metadata.annotations?.['onnx-sidecar.io/status'] !== undefined)
  expect(injected.length >= 3, `only ${injected.length} injected pods in ${APP_NS}`)
  return `${APP_NS} enforces restricted: kubectl run without a security context → ${r.stderr.trim().split('\n')[0] ?? ''}; ${injected.length} injected pods admitted (${injected.map((p: Json) => p.metadata.name).join(', ')})`
}
