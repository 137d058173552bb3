import { expect } from '../lib.js'
import { appTransport, classifyThroughApp } from '../app.js'
import { readyPods } from '../pods.js'

/** The app's answers through ONNX_SIDECAR_URL, in both pods of the recommender Deployment. */
export async function checkPredictions (): Promise<string> {
  const pods = await readyPods('recommender', 2)
  const lines: string[] = []
  for (const p of pods) {
    const ip = String(p.status.podIP)
    const transport = await appTransport(ip)
    expect(transport === 'http://127.0.0.1:8500', `the app reaches its sidecar through ${transport}, not ONNX_SIDECAR_URL http://127.0.0.1:8500`)
    lines.push(`${String(p.metadata.name)} (${ip}): ${await classifyThroughApp(ip, '1')} through $ONNX_SIDECAR_URL (${transport})`)
  }
  return lines.join('\n')
}
