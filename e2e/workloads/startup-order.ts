import { expect } from '../lib.js'
import { type Json } from '../context.js'
import { SIDECAR } from '../pod-assertions.js'
import { readyPods, statusOf, logsOf, jsonLines } from '../pods.js'

/** The kubelet started the native sidecar first and the app only after the sidecar's startup probe passed. */
export async function checkStartupOrder (): Promise<string> {
  const pods = await readyPods('recommender', 2)
  const lines: string[] = []
  for (const p of pods) {
    const sc = statusOf(p, SIDECAR)
    const app = statusOf(p, 'recommender')
    expect(sc?.started === true && sc.state?.running !== undefined, `${String(p.metadata.name)}: the sidecar is not running/started: ${JSON.stringify(sc)}`)
    expect(app?.state?.running !== undefined, `${String(p.metadata.name)}: the app is not running: ${JSON.stringify(app)}`)
    const sidecarStart = Date.parse(sc.state.running.startedAt)
    const appStart = Date.parse(app.state.running.startedAt)
    // The sidecar's own word on when its model was ready (pino's epoch-ms "time").
    const ready = jsonLines(await logsOf(p, SIDECAR)).find((e: Json) => e.msg === 'model version ready')
    expect(ready !== undefined, `${String(p.metadata.name)}: the sidecar never logged "model version ready"`)
    // startedAt has one-second resolution: compare whole seconds.
    expect(Math.floor(sidecarStart / 1000) <= Math.floor(appStart / 1000), `${String(p.metadata.name)}: the app started (${String(app.state.running.startedAt)}) before the sidecar (${String(sc.state.running.startedAt)})`)
    const readyAt = typeof ready.time === 'number' ? ready.time : Date.parse(String(ready.time))
    expect(Number.isFinite(readyAt), `${String(p.metadata.name)}: the sidecar's "model version ready" line has no time: ${JSON.stringify(ready)}`)
    expect(Math.floor(readyAt / 1000) <= Math.floor(appStart / 1000), `${String(p.metadata.name)}: the app started at ${String(app.state.running.startedAt)}, before the sidecar's model was ready at ${new Date(readyAt).toISOString()}`)
    expect(app.restartCount === 0 && sc.restartCount === 0, `${String(p.metadata.name)}: restarts: sidecar ${String(sc.restartCount)}, app ${String(app.restartCount)}`)
    lines.push(`${String(p.metadata.name)} on ${String(p.spec.nodeName)} at ${String(p.status.podIP)}: sidecar started ${String(sc.state.running.startedAt)}, model ready ${new Date(readyAt).toISOString()}, app started ${String(app.state.running.startedAt)}; no restarts`)
  }
  return lines.join('\n')
}
