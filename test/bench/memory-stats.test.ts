import t from 'tap'
import { memoryTargets, parseProcStatus, peakOf, verdict, type MemoryRun, type MemorySample } from '../../bench/memory-stats.js'

const STATUS = `Name:\tnode
VmPeak:\t 1999340 kB
VmRSS:\t  148480 kB
RssAnon:\t   76800 kB
RssFile:\t   70656 kB
RssShmem:\t    1024 kB
Threads:\t17
`

t.test('parseProcStatus reads VmRSS, RssAnon and RssFile + RssShmem in MiB', async t => {
  t.same(parseProcStatus(STATUS), { rssMib: 145, anonMib: 75, fileMib: 70 })
})

t.test('parseProcStatus names the missing field', async t => {
  t.throws(() => parseProcStatus(STATUS.replace(/^RssAnon.*$/m, '')), /no RssAnon line/)
  t.throws(() => parseProcStatus('VmRSS:\tlots kB\n'), /no VmRSS line/)
})

const s = (anonMib: number): MemorySample => ({ rssMib: anonMib + 60, anonMib, fileMib: 60 })

t.test('peakOf keeps the sample with the most anonymous memory; none is an error', async t => {
  t.equal(peakOf([s(70), s(120), s(90)]).anonMib, 120)
  t.throws(() => peakOf([]), /no memory samples/)
})

const run = (idle: number, peak: number, at30: number): MemoryRun => ({ idle: s(idle), peak: s(peak), after: { 5: s(peak), 15: s(at30), 30: s(at30) }, samples: 50 })

t.test('verdict: the burst limit and the ratio to idle after the burst, both inclusive', async t => {
  t.same(verdict(run(80, 100, 96), 100, 30, 1.2), { burstOk: true, afterRatio: 1.2, afterOk: true })
  const bad = verdict(run(80, 100.1, 97), 100, 30, 1.2)
  t.equal(bad.burstOk, false)
  t.equal(bad.afterOk, false)
  t.throws(() => verdict(run(80, 90, 80), 100, 60, 1.2), /no sample 60 s after the burst/)
})

t.test('memoryTargets checks sidecar cells only, two targets each', async t => {
  const checks = memoryTargets({
    sidecar_big: { ...run(76.8, 126.7, 91.7), server: 'sidecar', model: 'mlp5m' },
    naive_big: { ...run(61, 83, 79), server: 'naive', model: 'mlp5m' }
  })
  t.equal(checks.length, 2)
  t.match(checks[0], { pass: false, target: 'sidecar, mlp5m, 64-conn burst: anonymous memory ≤ 100 MiB', measured: /^peak 126\.7 MiB \(idle 76\.8; RSS peak 186\.7\)$/ })
  t.match(checks[1], { pass: true, target: 'sidecar, mlp5m: anonymous memory 30 s after the burst ≤ 1.2× idle', measured: '91.7 vs 76.8 MiB = 1.19×' })
})
