import { stringify as toYaml } from 'yaml'
import { expect, waitFor } from '../lib.js'
import { APP_NS, kubectl, kubectlApply, getJson, type Json } from '../context.js'
import { SIDECAR } from '../pod-assertions.js'
import { APP_IMAGE } from '../images.js'
import { isReady, statusOf, logsOf, jsonLines, why } from '../pods.js'

/** A pod whose model does not exist never becomes ready, and says why. */
export async function checkMissingModel (): Promise<string> {
  await kubectlApply(toYaml({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'missing-model', namespace: APP_NS, labels: { 'app.kubernetes.io/name': 'missing-model' }, annotations: { 'onnx-sidecar.io/model': 'no-such-model', 'onnx-sidecar.io/memory-limit': '256Mi' } },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{
        name: 'app',
        image: APP_IMAGE,
        resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
        securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }
      }]
    }
  }))
  // The startup probe fails every 2 s; the events and the sidecar's log say why.
  const evidence = await waitFor('startup probe failures and the sidecar\'s reason', async () => {
    const p = await getJson('pod', 'missing-model', '-n', APP_NS)
    const sc = statusOf(p, SIDECAR)
    if (sc?.state?.running === undefined && sc?.lastState?.terminated === undefined) return undefined
    const events = await why(APP_NS, 'missing-model')
    if (!/Unhealthy/.test(events)) return undefined
    const reason = jsonLines(await logsOf(p, SIDECAR)).find((e: Json) => e.msg === 'model cannot be loaded')
    return reason === undefined ? undefined : { p, events, reason }
  }, { timeoutMs: 120_000, intervalMs: 2000 })
  const { p, events, reason } = evidence
  expect(!isReady(p), 'the pod became Ready')
  const app = statusOf(p, 'app')
  expect(app?.state?.running === undefined, `the app container started although the sidecar never passed its startup probe: ${JSON.stringify(app)}`)
  expect(String(reason.reason).includes('no-such-model'), `the sidecar's reason does not name the model: ${JSON.stringify(reason)}`)
  const unhealthy = events.split('\n').find(l => l.startsWith('Unhealthy')) ?? ''
  await kubectl('delete', 'pod', 'missing-model', '-n', APP_NS, '--wait=false')
  return `not Ready, app container ${Object.keys(app?.state ?? {}).join('')} (${String(app?.state?.waiting?.reason ?? '')}); event: ${unhealthy}; sidecar log: "${String(reason.msg)}": ${String(reason.reason)}`
}
