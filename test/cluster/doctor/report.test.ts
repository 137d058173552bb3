import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { loadCluster, snapshotOf, FIXTURES } from '../../fixtures/doctor/cluster.js'
import { diagnose } from '../../../cluster/doctor/diagnose.js'
import { exitCode, jsonReport, textReport } from '../../../cluster/doctor/report.js'

/** test/fixtures/doctor/golden/NAME; REFRESH_GOLDEN=1 rewrites it (review the diff). */
function golden (t: { equal: (a: string, b: string, m: string) => unknown }, name: string, actual: string): void {
  const file = `${FIXTURES}golden/${name}`
  if (process.env.REFRESH_GOLDEN === '1') writeFileSync(file, actual)
  t.equal(actual, readFileSync(file, 'utf8'), `matches golden/${name}`)
}

t.test('text: every finding of the broken namespace, errors first, problem and fix on their own lines', async t => {
  const d = diagnose(snapshotOf(loadCluster(), 'broken'))
  golden(t, 'broken.txt', textReport(d, 'namespace broken'))
  t.equal(exitCode(d), 1)
})

t.test('text: a healthy namespace says so and what it looked at', async t => {
  const d = diagnose(snapshotOf(loadCluster(), 'shop'))
  t.same(d.findings, [])
  t.same(d.checked, ['MutatingWebhookConfiguration onnx-sidecar', 'Namespace shop', 'Deployment shop/recommender', 'ReplicaSet shop/recommender-5d8f7', 'Pod shop/recommender-5d8f7-abcde', 'Pod shop/plain'])
  t.equal(textReport(d, 'namespace shop'), 'onnx-sidecar doctor: namespace shop: nothing wrong (checked 6 objects)\n')
  t.equal(exitCode(d), 0)
})

t.test('warnings only: printed, exit 0', async t => {
  const d = diagnose(snapshotOf(loadCluster(), 'shop', { now: new Date('2026-12-10T00:00:00Z') }))
  golden(t, 'expiring.txt', textReport(d, 'namespace shop'))
  t.equal(exitCode(d), 0)
})

t.test('json: { findings, checked }', async t => {
  const d = diagnose(snapshotOf(loadCluster(), 'optout'))
  golden(t, 'optout.json', jsonReport(d))
  const parsed = JSON.parse(jsonReport(d))
  t.same(Object.keys(parsed), ['findings', 'checked'])
  t.same(Object.keys(parsed.findings[0]), ['code', 'severity', 'object', 'problem', 'fix'])
})
