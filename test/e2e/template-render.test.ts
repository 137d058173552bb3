/** The Argo Rollouts / Flagger renderer and judge the e2e runs the templates of deploy/monitoring with (e2e/template-render.ts). */
import t from 'tap'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { TEST_ARGS, fillIn, templateQueries } from '../fixtures/monitoring/rule-files.js'
import { FLAGGER_RANGES, argoPhase, evalCondition, fleetQueries, flaggerPasses, monitoringDocs, renderArgo, renderFlagger, withoutFallback, type FleetRollout } from '../../e2e/template-render.js'

const argoDocs = monitoringDocs('argo-analysis-templates.yaml')
const flaggerDocs = monitoringDocs('flagger-metric-templates.yaml')
const ADS: FleetRollout = { namespace: 'shop', deployment: 'ads', model: 'ads', live: '1', candidate: '2' }
const ARGS = { namespace: 'shop', model: 'ads', 'live-version': '1', 'candidate-version': '2' }
const SELECTOR = 'namespace="shop", model="ads", live_version="1", candidate_version="2"'

function argoDoc (query: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { metadata: { name: 't' }, spec: { args: [{ name: 'a' }, { name: 'b', value: 'B' }], metrics: [{ name: 'm', provider: { prometheus: { query } }, ...extra }] } }
}
const flaggerDoc = (query: unknown): Record<string, unknown> => ({ metadata: { name: 'f' }, spec: { query } })

t.test('the AnalysisTemplates render with the Rollout\'s arguments and the templates\' defaults for the rest', async t => {
  const metrics = argoDocs.flatMap(d => renderArgo(d, { ...ARGS, 'prometheus-address': 'http://127.0.0.1:9090' }))
  t.same(metrics.map(m => `${m.template}/${m.name}`), ['onnx-sidecar-agreement/agreement-bounds', 'onnx-sidecar-guards/candidate-errors', 'onnx-sidecar-guards/candidate-latency', 'onnx-sidecar-guards/candidate-calibration'])
  for (const m of metrics) {
    t.notMatch(JSON.stringify(m), /\{\{/, `${m.name}: every tag resolved`)
    t.match(m.query, SELECTOR, `${m.name}: the rollout's labels`)
    t.equal(m.address, 'http://127.0.0.1:9090')
  }
  const [bounds] = metrics
  t.equal(bounds?.successCondition, 'len(result) == 2 && all(result, {# >= 0.98})', 'threshold: the template\'s default')
  t.match(bounds?.query ?? '', /3\.09 \^ 2/, 'z: the template\'s default')
  t.equal(metrics[1]?.failureCondition, 'result[0] > 3.09')
  t.match(renderArgo(argoDocs[0] ?? {}, { ...ARGS, threshold: '0.95' })[0]?.successCondition ?? '', /# >= 0\.95/, 'a supplied argument wins over the default')
})

t.test('Argo: an argument without a value, a tag that is no argument and an unclosed tag are errors', async t => {
  t.same(renderArgo(argoDoc('x{{ args.a }}{{args.b}}'), { a: 'A' })[0], { template: 't', name: 'm', query: 'xAB', address: '' }, 'spaces inside the braces are trimmed')
  t.throws(() => renderArgo(argoDoc('{{args.a}}'), {}), /AnalysisTemplate t: argument "a" was not supplied/)
  t.throws(() => renderArgo(argoDoc('{{args.c}}'), { a: 'A' }), /AnalysisTemplate t metric m query: failed to resolve \{\{args.c\}\}/)
  t.throws(() => renderArgo(argoDoc('{{a}}'), { a: 'A' }), /failed to resolve \{\{a\}\}/, 'the args. prefix is required')
  t.throws(() => renderArgo(argoDoc('up{a="{{args.a"}'), { a: 'A' }), /'\{\{' without '\}\}'/)
  t.throws(() => renderArgo(argoDoc('1', { successCondition: 'result[0] > {{args.x}}' }), { a: 'A' }), /metric m successCondition: failed to resolve \{\{args.x\}\}/)
  t.throws(() => renderArgo({ metadata: { name: 't' }, spec: { metrics: [{ name: 'w', provider: { web: {} } }] } }, {}), /metric w: not a Prometheus query/)
  t.same(renderArgo({ metadata: { name: 'empty' } }, {}), [], 'no metrics, no args')
})

t.test('the MetricTemplates render with the Canary\'s namespace and templateVariables', async t => {
  const model = { namespace: 'shop', target: 'ads', interval: '1m', variables: { model: 'ads', live_version: '1', candidate_version: '2', z: '3.09' } }
  const rendered = flaggerDocs.map(d => renderFlagger(d, model))
  t.same(rendered.map(r => r.template), Object.keys(FLAGGER_RANGES))
  for (const r of rendered) {
    t.notMatch(r.query, /\{\{/, `${r.template}: every tag resolved`)
    t.match(r.query, SELECTOR, `${r.template}: the rollout's labels`)
  }
  t.equal(renderFlagger(flaggerDoc('{{namespace}}/{{ target }}[{{ interval }}] {{ variables.k }}'), { ...model, variables: { k: 'v' } }).query, 'shop/ads[1m] v')
  t.throws(() => renderFlagger(flaggerDoc('{{ variables.nope }}'), model), /MetricTemplate f: no templateVariable 'nope'/)
  t.throws(() => renderFlagger(flaggerDoc('{{ args.model }}'), model), /\{\{ args.model \}\} is not a Flagger template function/)
  t.throws(() => renderFlagger(flaggerDoc('{{ service }}'), model), /MetricTemplate f: no value for \{\{ service \}\}/)
  t.throws(() => renderFlagger(flaggerDoc(undefined), model), /MetricTemplate f: no spec.query/)
})

t.test('every query of the fleet rollout, once, with its Flagger thresholdRange', async t => {
  const { z, queries } = fleetQueries(argoDocs, flaggerDocs, ADS, 'http://p:9090')
  t.equal(z, 3.09)
  t.same(queries.map(q => q.label), [
    'argo onnx-sidecar-agreement/agreement-bounds', 'argo onnx-sidecar-guards/candidate-errors', 'argo onnx-sidecar-guards/candidate-latency', 'argo onnx-sidecar-guards/candidate-calibration',
    ...Object.keys(FLAGGER_RANGES).map(n => `flagger ${n}`)
  ])
  for (const q of queries) {
    t.match(q.query, SELECTOR, q.label)
    t.equal(q.engine === 'argo' ? q.argo !== undefined : q.range !== undefined, true, `${q.label}: its conditions or range`)
  }
  t.throws(() => fleetQueries(argoDocs, [{ metadata: { name: 'other' }, spec: { query: 'up' } }], ADS, ''), /MetricTemplate other: no thresholdRange known/)
  t.throws(() => fleetQueries([argoDoc('1')], [], ADS, ''), /z defaults: \[\] \(want one value\)/)
})

t.test('the e2e runs the very queries the promtool tests evaluate (scripts/test-monitoring.sh)', async t => {
  const rollout = { namespace: TEST_ARGS.namespace, deployment: 'ads', model: TEST_ARGS.model, live: TEST_ARGS.live_version, candidate: TEST_ARGS.candidate_version } as FleetRollout
  t.same(fleetQueries(argoDocs, flaggerDocs, rollout, '').queries.map(q => q.query), templateQueries().map(q => fillIn(q.engine, q.query)))
})

t.test('FLAGGER_RANGES are the thresholdRanges docs/rollouts.md gives', async t => {
  const page = readFileSync(new URL('../../docs/rollouts.md', import.meta.url), 'utf8').replace(/\s+/g, ' ')
  const documented = Object.fromEntries([...page.matchAll(/`(min|max): ([\d.]+)` on `(onnx-sidecar-[\w-]+)`/g)].map(m => [m[3], { [m[1] as string]: Number(m[2]) }]))
  t.same(Object.fromEntries(Object.entries(FLAGGER_RANGES).filter(([, r]) => r !== null)), documented)
})

t.test('Argo conditions as expr evaluates them', async t => {
  const bounds = 'len(result) == 2 && all(result, {# >= 0.98})'
  t.equal(evalCondition(bounds, [0.981, 0.999]), true)
  t.equal(evalCondition(bounds, [0.97, 0.999]), false)
  t.equal(evalCondition(bounds, []), false, 'no evidence: two values wanted')
  t.equal(evalCondition('len(result) == 2 && all(result, {# < 0.98})', [0.9, 0.95]), true)
  t.equal(evalCondition('result[0] > 3.09', [3.1]), true)
  t.equal(evalCondition('result[0] > -1 and not (result[0] >= 2) or false', [1]), true)
  t.equal(evalCondition('!(result[0] != 1) || result[0] <= 0', [1]), true)
  t.equal(evalCondition('any(result, {# < 0}) || none(result, {# > 5})', [1, 2]), true)
  t.equal(evalCondition('any(result, {# < 0})', [1, 2]), false)
  t.equal(evalCondition('none(result, {# > 1})', [1, 2]), false)
  t.equal(evalCondition('all(result, {all(result, {# > 0}) && # > 1})', [2, 3]), true, 'a nested predicate gives # back')
  t.equal(evalCondition('result[0] == 1e3 && true', [1000]), true)
  t.throws(() => evalCondition('result[0] > 1', []), /index 0 out of range \(0 values\)/)
  t.throws(() => evalCondition('result[0] > 1', [Number.NaN, 1].slice(2)), /out of range/)
  t.throws(() => evalCondition('result[0] = 1', [1]), /cannot read it/)
  t.throws(() => evalCondition('asFloat(result[0]) > 1', [1]), /'asFloat' is not supported here/)
  t.throws(() => evalCondition('# > 1', [1]), /# outside a predicate/)
  t.throws(() => evalCondition('result[0]', [1]), /1 is not a boolean/)
  t.throws(() => evalCondition('result > 1', [1]), /\[1\] is not a number/)
  t.throws(() => evalCondition('len(1) == 1', [1]), /1 is not an array/)
  t.throws(() => evalCondition('result[0] > 1 1', [1]), /unexpected '1'/)
  t.throws(() => evalCondition('(result[0] > 1', [1]), /expected \) at token/)
  t.throws(() => evalCondition('len(', [1]), /expected more/)
})

t.test('a measurement\'s phase from its conditions, as Argo Rollouts decides it', async t => {
  const both = { successCondition: 'result[0] >= 1', failureCondition: 'result[0] < 0' }
  t.equal(argoPhase(both, [1]), 'Successful')
  t.equal(argoPhase(both, [-1]), 'Failed')
  t.equal(argoPhase(both, [0.5]), 'Inconclusive')
  t.equal(argoPhase(both, []), 'Error')
  t.equal(argoPhase({ successCondition: 'result[0] >= 1' }, [0]), 'Failed', 'only a success condition: not met is a failure')
  t.equal(argoPhase({ failureCondition: 'result[0] > 0' }, [0]), 'Successful', 'only a failure condition: not met is a success')
  t.equal(argoPhase({ failureCondition: 'result[0] > 0' }, [1]), 'Failed')
  t.equal(argoPhase({}, []), 'Successful')
})

t.test('Flagger\'s thresholdRange and the fallback of a query', async t => {
  t.equal(flaggerPasses(0.98, { min: 0.98 }), true)
  t.equal(flaggerPasses(0.97, { min: 0.98 }), false)
  t.equal(flaggerPasses(0.2, { max: 0.1 }), false)
  t.equal(flaggerPasses(-5, {}), true)
  t.equal(withoutFallback('(\n  a\n) or on () vector(0)\n'), '(\n  a\n)')
  t.equal(withoutFallback('clamp_max(b, 1) or on() vector( 1 )'), 'clamp_max(b, 1)')
  t.equal(withoutFallback('sort(a or b)'), undefined)
  for (const d of flaggerDocs) t.type(withoutFallback(d.spec.query), 'string', `${String(d.metadata.name)} has a fallback`)
})

t.test('a file that is not YAML names itself and the document', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'template-render-'))
  writeFileSync(join(dir, 'bad.yaml'), 'a: 1\n---\nb: [\n')
  t.throws(() => monitoringDocs('bad.yaml', pathToFileURL(dir + '/')), /bad.yaml, document 2: /)
})
