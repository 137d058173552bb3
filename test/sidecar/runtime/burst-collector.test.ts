/**
 * The main thread's collection after a burst (sidecar/runtime/gc.ts, BurstCollector): young
 * always, the old space too when it grew by more than OLD_SPACE_GROWTH since the last
 * release; growth that stays live is not collected again. And with the real heap: promoted
 * garbage is given back.
 */
import t from 'tap'
import { BurstCollector, OLD_SPACE_GROWTH, collectYoung, oldSpaceUsed } from '../../../sidecar/runtime/gc.js'

t.test('a full collection only when the old space grew past the threshold since the last release', async t => {
  let used = 50e6
  const calls: string[] = []
  const c = new BurstCollector({ used: () => used, full: () => { calls.push('full'); used = 52e6 }, young: () => { calls.push('young') } })
  used += OLD_SPACE_GROWTH // exactly the threshold: not past it
  t.equal(c.collect(), false)
  t.same(calls.splice(0), ['young'])
  used += OLD_SPACE_GROWTH + 1
  t.equal(c.collect(), true)
  t.same(calls.splice(0), ['full', 'young'], 'the old space first, then the young generation')
  t.equal(c.collect(), false, 'the floor is what the full collection left: nothing grew since')
  t.same(calls.splice(0), ['young'])
})

t.test('live growth moves the floor: it is not collected again', async t => {
  let used = 10e6
  let fulls = 0
  const c = new BurstCollector({ used: () => used, full: () => { fulls++ }, young: () => {} })
  used = 40e6 // grew, and the full collection frees nothing: it is live
  t.equal(c.collect(), true)
  t.equal(c.collect(), false)
  t.equal(fulls, 1)
})

t.test('with the real heap, promoted garbage is collected', async t => {
  const c = new BurstCollector()
  // Objects that survive two scavenges land in the old space, then become garbage.
  let held: Array<{ n: number, s: string }> | undefined = []
  for (let i = 0; i < 400_000; i++) held.push({ n: i, s: `row ${i}` })
  collectYoung() // two scavenges promote them, as a burst's in-flight requests are
  collectYoung()
  const grown = oldSpaceUsed()
  held = undefined
  t.equal(held, undefined)
  t.equal(c.collect(), true, 'the growth was over the threshold')
  t.ok(oldSpaceUsed() < grown - OLD_SPACE_GROWTH, `old space ${(oldSpaceUsed() / 2 ** 20).toFixed(1)} MiB after, ${(grown / 2 ** 20).toFixed(1)} MiB before`)
})
