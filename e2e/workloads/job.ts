import { stringify as toYaml } from 'yaml'
import { expect, waitFor } from '../lib.js'
import { APP_NS, kubectlApply, getJson, type Json } from '../context.js'
import { SIDECAR } from '../pod-assertions.js'
import { APP_IMAGE } from '../images.js'
import { podsOf, statusOf, logsOf } from '../pods.js'

/** A Job whose app container calls the sidecar once and exits: the native sidecar does not hold the Job open. */
export async function checkJob (): Promise<string> {
  const script = [
    "import { SidecarClient } from 'onnx-sidecar/client'",
    'const c = new SidecarClient()',
    "const r = await c.infer('iris', [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }])",
    'console.log(JSON.stringify(r.outputs.map(o => [o.name, o.data])))',
    'await c.close()'
  ].join('\n')
  await kubectlApply(toYaml({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'score-once', namespace: APP_NS },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: 240,
      template: {
        metadata: { labels: { 'app.kubernetes.io/name': 'score-once' }, annotations: { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/memory-limit': '256Mi' } },
        spec: {
          restartPolicy: 'Never',
          securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{
            name: 'score',
            image: APP_IMAGE,
            command: ['node', '--input-type=module', '-e', script],
            workingDir: '/app',
            resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
            securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }
          }]
        }
      }
    }
  }))
  const job = await waitFor('Job score-once Complete', async () => {
    const j = await getJson('job', 'score-once', '-n', APP_NS)
    const failed = (j.status?.conditions ?? []).find((c: Json) => c.type === 'Failed' && c.status === 'True')
    if (failed !== undefined) throw new Error(`the Job failed: ${String(failed.reason)} ${String(failed.message)}`)
    return (j.status?.conditions ?? []).some((c: Json) => c.type === 'Complete' && c.status === 'True') ? j : undefined
  }, { timeoutMs: 240_000, intervalMs: 1000 })
  const [p] = await podsOf('score-once')
  expect(p !== undefined, 'the Job\'s pod is gone')
  expect(p.status.phase === 'Succeeded', `the Job's pod is ${String(p.status.phase)}`)
  const sc = statusOf(p, SIDECAR)?.state?.terminated
  expect(sc !== undefined, `the sidecar of the finished Job pod is not terminated: ${JSON.stringify(statusOf(p, SIDECAR))}`)
  const out = (await logsOf(p, 'score')).trim()
  expect(out.includes('"label"') && out.includes('probabilities'), `the Job's output has no prediction: ${out}`)
  return `Job score-once Complete (succeeded ${String(job.status.succeeded)}); the app printed ${out}; the sidecar was stopped by the kubelet (exit ${String(sc.exitCode)})`
}
