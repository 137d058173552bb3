/**
 * The main thread's collection after a burst (sidecar/runtime/gc.ts, BurstCollector): young
 * always, the old space too when it grew by more than OLD_SPACE_GROWTH since the last
 * release; growth that stays live is not collected again. And with the real heap: promoted
 * garbage is given back.
 */
import t from 'tap'
import { BurstCollector, OLD_SPACE_GROWTH, collectAll, collectCompacting, collectYoung, oldSpaceCommitted } from '../../../sidecar/runtime/gc.js'

t.test('a full collection only when the old space grew past the threshold since the last release', async t => {
  let committed = 50e6
  const calls: string[] = []
  const c = new BurstCollector({ committed: () => committed, full: () => { calls.push('full'); committed = 52e6 }, young: () => { calls.push('young') } })
  committed += OLD_SPACE_GROWTH // exactly the threshold: not past it
  t.equal(c.collect(), false)
  t.same(calls.splice(0), ['young'])
  committed += OLD_SPACE_GROWTH + 1
  t.equal(c.collect(), true)
  t.same(calls.splice(0), ['full', 'young'], 'the old space first, then the young generation')
  t.equal(c.collect(), false, 'the floor is what the full collection left: nothing grew since')
  t.same(calls.splice(0), ['young'])
})

t.test('live growth moves the floor: it is not collected again', async t => {
  let committed = 10e6
  let fulls = 0
  const c = new BurstCollector({ committed: () => committed, full: () => { fulls++ }, young: () => {} })
  committed = 40e6 // grew, and the full collection frees nothing: it is live
  t.equal(c.collect(), true)
  t.equal(c.collect(), false)
  t.equal(fulls, 1)
})

/**
 * A burst's garbage in the old space: 400,000 objects survive two scavenges and are
 * promoted, as a burst's in-flight requests are, then all but one in 20 become garbage. The
 * survivors go to `kept`, spread over every page, as a burst leaves a few long-lived
 * objects. Answers how many became garbage.
 */
function promoteGarbage (kept: object[]): number {
  const held: object[] = []
  for (let i = 0; i < 400_000; i++) {
    const o = { n: i, s: `row ${i}` }
    held.push(o)
    if (i % 20 === 0) kept.push(o)
  }
  collectYoung()
  collectYoung()
  return held.length - 20_000
}

t.test('with the real heap, promoted garbage is collected and its pages given back', async t => {
  const c = new BurstCollector()
  const kept: object[] = []
  t.equal(promoteGarbage(kept), 380_000)
  const grown = oldSpaceCommitted()
  t.equal(c.collect(), true, 'the growth was over the threshold')
  const after = oldSpaceCommitted()
  t.ok(after < grown - 2 * OLD_SPACE_GROWTH, `old space ${(after / 2 ** 20).toFixed(1)} MiB committed after, ${(grown / 2 ** 20).toFixed(1)} MiB before`)
  t.equal(kept.length, 20_000, 'what stayed live is still there')
})

t.test('a compacting collection returns pages a plain one keeps', async t => {
  const kept: object[] = []
  promoteGarbage(kept)
  collectAll()
  const plain = oldSpaceCommitted()
  kept.length = 0
  collectCompacting()
  const base = oldSpaceCommitted()
  promoteGarbage(kept)
  collectCompacting()
  const compacted = oldSpaceCommitted()
  t.ok(compacted - base < plain - base, `compacting: ${((compacted - base) / 2 ** 20).toFixed(1)} MiB over the base, plain: ${((plain - base) / 2 ** 20).toFixed(1)}`)
  t.equal(kept.length, 20_000)
})
