/**
 * Section `rss`: idle RSS of the sidecar with the example iris model and 1, 2, 3 workers.
 */
import path from 'node:path'
import { log, rssOf, sleep, startSidecar } from '../harness.js'
import { ROOT } from '../env.js'
import type { BenchContext, Results } from './context.js'

export async function runRss (_ctx: BenchContext, results: Results): Promise<void> {
  const rss = results.rss
  for (const workers of [1, 2, 3]) {
    const sc = await startSidecar(path.join(ROOT, 'models'), ['--model', 'iris', '--workers', String(workers), '--threads', '1'])
    try {
      await sleep(2000)
      const r = await rssOf(sc.child.pid as number)
      log(`idle RSS, iris, ${workers} worker(s): ${r.mib.toFixed(1)} MiB (anonymous ${r.anonMib.toFixed(1)}, file-backed ${r.fileMib.toFixed(1)})`)
      rss.push({ workers, ...r })
    } finally { await sc.stop() }
  }
}
