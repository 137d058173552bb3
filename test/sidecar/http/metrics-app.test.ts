/**
 * `/metrics` on the listener thread asks the main thread for at most one render at a
 * time and reuses it for `scrapeCacheMs` (issue 20): a flood of scrapes must not turn
 * into a flood of renders on the thread that serves inference. The registry here counts
 * its renders, and can hold one in flight until the test lets it finish.
 */
import t, { type Test } from 'tap'
import { Counter, Registry } from 'prom-client'
import { request } from 'undici'
import { MetricsServer, type MetricsListenOptions } from '../../../sidecar/http/metrics-app.js'
import type { ModelManager } from '../../../sidecar/models/model-manager.js'

class CountingRegistry extends Registry {
  renders = 0
  /** Renders wait for this before they answer. */
  gate: Promise<void> = Promise.resolve()
  /** Fail the next render with this message. */
  failNext: string | undefined

  override async metrics (): Promise<string> {
    this.renders++
    await this.gate
    const fail = this.failNext
    this.failNext = undefined
    if (fail !== undefined) throw new Error(fail)
    return await super.metrics()
  }
}

async function metricsServer (t: Test, opts: MetricsListenOptions): Promise<{ registry: CountingRegistry, scrapes: Counter, scrape: () => Promise<{ status: number, text: string }> }> {
  const registry = new CountingRegistry()
  const scrapes = new Counter({ name: 'test_scrapes_total', help: 'a value the test changes between scrapes', registers: [registry] })
  const manager = { ready: () => true } as unknown as ModelManager
  const server = new MetricsServer({ registry, manager, isShuttingDown: () => false })
  const port = await server.listen(0, '127.0.0.1', opts)
  t.teardown(() => server.close())
  const scrape = async (): Promise<{ status: number, text: string }> => {
    const res = await request(`http://127.0.0.1:${port}/metrics`)
    return { status: res.statusCode, text: await res.body.text() }
  }
  return { registry, scrapes, scrape }
}

/** Resolves once `cond` holds, checking after each turn of the event loop. */
async function until (cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise(resolve => setImmediate(resolve))
}

t.test('concurrent and rapid scrapes share one render of the main thread', async t => {
  const { registry, scrapes, scrape } = await metricsServer(t, { scrapeCacheMs: 60_000 })
  scrapes.inc(7)
  let release = (): void => {}
  registry.gate = new Promise(resolve => { release = resolve })
  const first = scrape()
  await until(() => registry.renders === 1) // the render is in flight and held
  const concurrent = Array.from({ length: 20 }, scrape)
  release()
  const answers = await Promise.all([first, ...concurrent])
  t.same(answers.map(a => a.status), answers.map(() => 200), 'every scrape is answered')
  t.match(answers[0]?.text, /^test_scrapes_total 7$/m)
  t.ok(answers.every(a => a.text === answers[0]?.text), 'all with the same text')
  for (let i = 0; i < 20; i++) t.equal((await scrape()).status, 200)
  t.equal(registry.renders, 1, '41 scrapes, one render')
  scrapes.inc()
  t.match((await scrape()).text, /^test_scrapes_total 7$/m, 'within the window a scrape gets the cached text')
})

t.test('past the window a scrape renders again', async t => {
  const { registry, scrapes, scrape } = await metricsServer(t, { scrapeCacheMs: 50 })
  t.match((await scrape()).text, /^test_scrapes_total 0$/m)
  scrapes.inc()
  await new Promise(resolve => setTimeout(resolve, 100))
  t.match((await scrape()).text, /^test_scrapes_total 1$/m)
  t.equal(registry.renders, 2)
})

t.test('scrapeCacheMs 0: no reuse, each scrape past the one in flight renders', async t => {
  const { registry, scrape } = await metricsServer(t, { scrapeCacheMs: 0 })
  for (let i = 0; i < 3; i++) t.equal((await scrape()).status, 200)
  t.equal(registry.renders, 3)
})

t.test('a failed render answers its waiters 500 and is not kept', async t => {
  const { registry, scrape } = await metricsServer(t, { scrapeCacheMs: 60_000 })
  registry.failNext = 'collector broke'
  const failed = await scrape()
  t.equal(failed.status, 500)
  t.match(JSON.parse(failed.text), { error: /collector broke/, code: 'OS_ERR_METRICS_FAILED' })
  t.equal((await scrape()).status, 200, 'the next scrape asks again')
  t.equal((await scrape()).status, 200)
  t.equal(registry.renders, 2, 'and the good render is kept')
})
