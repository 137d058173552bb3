import { expect, sleep } from '../lib.js'
import { APP_NS, kubectl, watchPodUntilDeleted, type Json } from '../context.js'
import { SIDECAR } from '../pod-assertions.js'
import { readyPods, statusOf } from '../pods.js'
import { load } from '../load.js'

/**
 * A Service keeps sending a deleted pod requests until kube-proxy has seen its endpoint go:
 * the load does the same, for this long after the API server accepted the delete.
 */
const ENDPOINT_LAG_MS = 1500

/**
 * Deleting a pod under load: every request it is sent while it terminates is answered (the
 * app keeps serving for its SHUTDOWN_DELAY_SECONDS, and each answer needs the sidecar); the
 * native sidecar stops after the app.
 */
export async function checkDeleteUnderLoad (): Promise<string> {
  const [victim] = await readyPods('recommender', 2)
  const ip = String(victim.status.podIP)
  const name = String(victim.metadata.name)
  let targets = [ip]
  let release: () => void = () => {}
  const stop = new Promise<void>(resolve => { release = resolve })
  const running = load(() => targets, stop, 4)
  await sleep(2000)
  // Watch from the version we read, so every status update the kubelet makes during termination is seen.
  const watching = watchPodUntilDeleted(APP_NS, name, String(victim.metadata.resourceVersion), 120_000)
  await kubectl('delete', 'pod', name, '-n', APP_NS, '--wait=false')
  const deleted = Date.now()
  await sleep(ENDPOINT_LAG_MS)
  targets = []
  const states = await watching
  release()
  const result = await running
  expect(result.failed.length === 0, `${result.failed.length} request(s) failed while ${name} was deleted:\n${result.failed.slice(0, 5).join('\n')}`)
  expect(result.ok > 0, 'no request was answered')
  expect(result.refused === 0, `${result.refused} connection(s) refused within ${ENDPOINT_LAG_MS} ms of the delete: the app stopped listening before its endpoint was gone`)
  // The first status that records each container's exit.
  const exitOf = (c: string): Json => states.map(p => statusOf(p, c)?.state?.terminated).find(t => t !== undefined)
  const app = exitOf('recommender')
  const sc = exitOf(SIDECAR)
  expect(app !== undefined && sc !== undefined, `the ${states.length} states of ${name} until its deletion do not record both exits: ${JSON.stringify(states.map(p => [statusOf(p, 'recommender')?.state, statusOf(p, SIDECAR)?.state]))}`)
  expect(Date.parse(sc.finishedAt) >= Date.parse(app.finishedAt), `the sidecar stopped (${String(sc.finishedAt)}) before the app (${String(app.finishedAt)})`)
  expect(app.exitCode === 0 && sc.exitCode === 0, `exit codes: app ${String(app.exitCode)}, sidecar ${String(sc.exitCode)} (a clean SIGTERM drain exits 0)`)
  const order = `app exited ${String(app.exitCode)} at ${String(app.finishedAt)}, then the sidecar ${String(sc.exitCode)} at ${String(sc.finishedAt)} (${states.length} states watched)`
  return `${name} deleted under load, sent requests for ${ENDPOINT_LAG_MS} ms after the delete (as a Service does until its endpoint goes): ${result.ok} answered 200, 0 failed, 0 refused; ${order}; gone ${((Date.now() - deleted) / 1000).toFixed(1)}s after the delete`
}
