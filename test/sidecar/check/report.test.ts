import t from 'tap'
import { exitCode, junitXml, textSummary, type CheckSuite } from '../../../sidecar/check/report.js'

const suites = (...outcomes: Array<'pass' | 'fail' | 'invalid'>): CheckSuite[] => [{ name: 'm/1', cases: outcomes.map((outcome, i) => ({ name: `c${i}`, outcome, message: outcome === 'pass' ? '' : `why <${i}> & "so"\u0001`, seconds: 0.5 })) }]

t.test('the worst case decides the exit code', async t => {
  t.equal(exitCode(suites('pass', 'pass')), 0)
  t.equal(exitCode(suites('pass', 'fail')), 1)
  t.equal(exitCode(suites('fail', 'invalid')), 2)
  t.match(textSummary(suites('pass', 'fail')), /check REGRESSED: 1 passed, 1 failed, 0 invalid \(exit 1\)\n$/)
})

t.test('JUnit: failures and errors counted, text escaped', async t => {
  const xml = junitXml(suites('pass', 'fail', 'invalid'))
  t.match(xml, /<testsuites name="onnx-sidecar check" tests="3" failures="1" errors="1" time="1\.500">/)
  t.match(xml, /<testcase classname="m\/1" name="c0" time="0\.500"\/>/)
  t.match(xml, /<failure message="why &lt;1&gt; &amp; &quot;so&quot;" type="regressed">/)
  t.match(xml, /<error message="why &lt;2&gt; &amp; &quot;so&quot;" type="invalid">/)
  t.notOk(xml.includes('\u0001'))
})
