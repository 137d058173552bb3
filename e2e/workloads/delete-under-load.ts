import { expect, sleep } from '../lib.js'
import { APP_NS, kubectl, watchPodUntilDeleted, type Json } from '../context.js'
import { SIDECAR } from '../pod-assertions.js'
import { readyPods, statusOf } from '../pods.js'
import { load } from '../load.js'

/** Deleting a pod under load: every request it accepted is answered; the native sidecar stops after the app. */
export async function checkDeleteUnderLoad (): Promise<string> {
  const [victim] = await readyPods('recommender', 2)
  const ip = String(victim.status.podIP)
  const name = String(victim.metadata.name)
  let release: () => void = () => {}
  const stop = new Promise<void>(resolve => { release = resolve })
  const running = load(() => [ip], stop, 4)
  await sleep(2000)
  const deleted = Date.now()
  // Watch from the version we read, so every status update the kubelet makes during termination is seen.
  const watching = watchPodUntilDeleted(APP_NS, name, String(victim.metadata.resourceVersion), 120_000)
  await kubectl('delete', 'pod', name, '-n', APP_NS, '--wait=false')
  const states = await watching
  release()
  const result = await running
  expect(result.failed.length === 0, `${result.failed.length} accepted request(s) failed while ${name} was deleted:\n${result.failed.slice(0, 5).join('\n')}`)
  expect(result.ok > 0, 'no request was answered')
  // The first status that records each container's exit.
  const exitOf = (c: string): Json => states.map(p => statusOf(p, c)?.state?.terminated).find(t => t !== undefined)
  const app = exitOf('recommender')
  const sc = exitOf(SIDECAR)
  expect(app !== undefined && sc !== undefined, `the ${states.length} states of ${name} until its deletion do not record both exits: ${JSON.stringify(states.map(p => [statusOf(p, 'recommender')?.state, statusOf(p, SIDECAR)?.state]))}`)
  expect(Date.parse(sc.finishedAt) >= Date.parse(app.finishedAt), `the sidecar stopped (${String(sc.finishedAt)}) before the app (${String(app.finishedAt)})`)
  expect(app.exitCode === 0 && sc.exitCode === 0, `exit codes: app ${String(app.exitCode)}, sidecar ${String(sc.exitCode)} (a clean SIGTERM drain exits 0)`)
  const order = `app exited ${String(app.exitCode)} at ${String(app.finishedAt)}, then the sidecar ${String(sc.exitCode)} at ${String(sc.finishedAt)} (${states.length} states watched)`
  return `${name} deleted under load after ${result.ok} answers: ${result.ok} answered 200, 0 failed, ${result.refused} connection(s) refused after the app stopped listening; ${order}; gone ${((Date.now() - deleted) / 1000).toFixed(1)}s after the delete`
}
