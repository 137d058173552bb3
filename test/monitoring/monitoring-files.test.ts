/**
 * deploy/monitoring without promtool (scripts/test-monitoring.sh runs promtool itself):
 * every file parses as what it claims to be; every metric an expression, a template query
 * or a dashboard panel reads is one the sidecar registers, one of the fleet contract's
 * evidence metrics, or a recording rule defined here; the dashboard's panel ids are unique;
 * and the bounds the promtool tests expect are the ones sidecar/rollout/stats.ts computes
 * from those tests' own input series.
 */
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { Registry } from 'prom-client'
import { parse } from 'yaml'
import { createSidecarMetrics, trackRequestMemory } from '../../sidecar/core/metrics.js'
import { createRolloutMetrics } from '../../sidecar/rollout/metrics.js'
import { MONITORING_DIR, TEST_ARGS, fillIn, prometheusRule, readDocs, recordName, ruleFiles, templateQueries } from '../fixtures/monitoring/rule-files.js'
import { counterIncrease, expandValues, metricNames } from '../fixtures/monitoring/promql.js'
import { pooled, type EvidenceSums } from '../fixtures/monitoring/pooled.js'
import { EVIDENCE_STATS } from '../../sidecar/rollout/evidence.js'

/** The fleet contract's evidence metrics (issue 22 part 3), name → type: registered with these types. */
const CONTRACT: Record<string, string> = {
  onnx_sidecar_rollout_evidence_total: 'counter',
  onnx_sidecar_rollout_answers_total: 'counter',
  onnx_sidecar_rollout_probability_sum_total: 'counter',
  onnx_sidecar_rollout_latency_seconds: 'histogram'
}
/** Series Prometheus itself adds to every target. */
const PROMETHEUS = ['up']

async function sidecarMetrics (): Promise<Map<string, string>> {
  const m = createSidecarMetrics({ defaultMetrics: false })
  trackRequestMemory(m, { used: 0, capacity: 1 })
  createRolloutMetrics(m.registry)
  const out = new Map<string, string>()
  for (const metric of await (m.registry as Registry).getMetricsAsJSON()) out.set(metric.name, String(metric.type))
  return out
}

function seriesNames (metrics: Map<string, string>): Set<string> {
  const names = new Set<string>(PROMETHEUS)
  for (const [name, type] of metrics) {
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s)
    else names.add(name)
  }
  return names
}

interface Panel { id: number, title: string, type: string, targets?: Array<{ expr: string }>, panels?: Panel[] }

function dashboard (): { title: string, uid: string, panels: Panel[], templating: { list: Array<{ name: string, query?: unknown }> } } {
  return JSON.parse(readFileSync(new URL('grafana-dashboard.json', MONITORING_DIR), 'utf8'))
}

t.test('the files parse as the objects they claim to be', async t => {
  const [rule] = readDocs('prometheus-rule.yaml')
  t.equal(rule?.apiVersion, 'monitoring.coreos.com/v1')
  t.equal(rule?.kind, 'PrometheusRule')
  const argo = readDocs('argo-analysis-templates.yaml')
  t.same(argo.map(d => `${String(d.apiVersion)} ${String(d.kind)} ${String(d.metadata.name)}`), [
    'argoproj.io/v1alpha1 AnalysisTemplate onnx-sidecar-agreement',
    'argoproj.io/v1alpha1 AnalysisTemplate onnx-sidecar-guards'
  ])
  const flagger = readDocs('flagger-metric-templates.yaml')
  t.ok(flagger.length >= 2 && flagger.every(d => d.apiVersion === 'flagger.app/v1beta1' && d.kind === 'MetricTemplate' && d.spec.provider.type === 'prometheus'), 'Flagger MetricTemplates with a Prometheus provider')
  for (const f of readdirSync(new URL('tests/', MONITORING_DIR))) {
    const test = parse(readFileSync(new URL(`tests/${f}`, MONITORING_DIR), 'utf8')) as { rule_files: string[], tests: unknown[] }
    t.ok(test.rule_files.every(r => r === 'rules.yaml' || r === 'template-queries.yaml'), `${f} reads the generated rule files`)
    t.ok(test.tests.length > 0, `${f} has tests`)
  }
  const files = ruleFiles()
  t.same(Object.keys(files), ['rules.yaml', 'template-queries.yaml'])
  const d = dashboard()
  t.ok(d.title.length > 0 && d.uid.length > 0, 'the dashboard has a title and a uid')
})

t.test('every metric read is registered by the sidecar, in the contract, or recorded here', async t => {
  const registered = await sidecarMetrics()
  for (const [name, type] of Object.entries(CONTRACT)) t.equal(registered.get(name), type, `${name} is registered as the contract's ${type}`)
  const known = seriesNames(registered)
  const groups = prometheusRule().groups
  const recorded = new Set(groups.flatMap(g => g.rules.flatMap(r => r.record === undefined ? [] : [r.record])))
  for (const q of templateQueries()) recorded.add(recordName(q))
  const unknown = (expr: string): string[] => [...metricNames(expr)].filter(n => !known.has(n) && !recorded.has(n))
  for (const g of groups) {
    for (const r of g.rules) t.same(unknown(r.expr), [], `${g.name}: ${r.record ?? r.alert ?? ''}`)
  }
  for (const q of templateQueries()) t.same(unknown(q.query), [], `${q.engine} ${q.template} ${q.metric}`)
  for (const p of panels(dashboard().panels)) {
    for (const target of p.targets ?? []) t.same(unknown(target.expr), [], `dashboard panel '${p.title}'`)
  }
  t.same(unknown('sum(rate(onnx_sidecar_no_such_metric_total[5m])) / onnx_sidecar:no_such_rule'), ['onnx_sidecar_no_such_metric_total', 'onnx_sidecar:no_such_rule'], 'an unknown name is found')
  const exprs = [...groups.flatMap(g => g.rules.map(r => r.expr)), ...templateQueries().map(q => q.query)]
  const stats = new Set(exprs.flatMap(e => [...e.matchAll(/stat="(\w+)"/g)].map(m => m[1] ?? '')))
  t.same([...stats].filter(s => !(EVIDENCE_STATS as readonly string[]).includes(s)), [], `the evidence stats read (${[...stats].join(', ')}) are the sidecar's`)
})

function panels (list: Panel[]): Panel[] {
  return list.flatMap(p => [p, ...panels(p.panels ?? [])])
}

t.test('the Grafana dashboard: unique panel ids, a query in every graph, the variables it uses', async t => {
  const d = dashboard()
  const all = panels(d.panels)
  const ids = all.map(p => p.id)
  t.same(ids.filter((id, i) => ids.indexOf(id) !== i), [], 'no panel id twice')
  t.ok(ids.every(id => Number.isInteger(id) && id > 0), 'ids are positive integers')
  const variables = new Set(d.templating.list.map(v => v.name))
  for (const p of all.filter(p => p.type !== 'row')) {
    t.ok((p.targets ?? []).length > 0, `'${p.title}' has a query`)
    for (const target of p.targets ?? []) {
      for (const [, v] of target.expr.matchAll(/\$(?!__)\{?(\w+)/g)) t.ok(variables.has(v ?? ''), `'${p.title}' uses $${v ?? ''}, a dashboard variable`)
    }
  }
})

t.test('the Argo Rollouts rule: promote at lower bound >= threshold, fail at upper bound < threshold', async t => {
  const [agreement] = readDocs('argo-analysis-templates.yaml')
  const metric = agreement?.spec.metrics[0]
  t.equal(fillIn('argo', metric.successCondition as string), 'len(result) == 2 && all(result, {# >= 0.98})')
  t.equal(fillIn('argo', metric.failureCondition as string), 'len(result) == 2 && all(result, {# < 0.98})')
  t.equal(metric.consecutiveSuccessLimit, 1, 'the first look that clears the threshold promotes')
  t.equal(metric.failureLimit, 0, 'the first look below it fails')
  t.ok(metric.inconclusiveLimit >= metric.count, 'looks in between are not a result: Inconclusive only when count runs out')
  // What Argo Rollouts (utils/analysis ValidateMetric) refuses.
  for (const doc of readDocs('argo-analysis-templates.yaml')) {
    for (const m of doc.spec.metrics as Array<{ name: string, count?: number, interval?: string, failureLimit?: number, consecutiveSuccessLimit?: number, inconclusiveLimit?: number }>) {
      const count = m.count ?? 0
      t.ok(count === 0 || count >= (m.failureLimit ?? 0) + (m.consecutiveSuccessLimit ?? 0), `${m.name}: count >= failureLimit + consecutiveSuccessLimit`)
      t.ok(count === 0 || count >= (m.inconclusiveLimit ?? 0), `${m.name}: count >= inconclusiveLimit`)
      t.ok(m.interval !== undefined, `${m.name}: looks again every interval`)
      t.ok((m.failureLimit ?? 0) >= 0, `${m.name}: a failure fails the run`)
    }
  }
  t.throws(() => fillIn('argo', '{{args.nope}}'), /no test value for argument 'nope'/)
})

/** Σ increase() per evidence stat of one promtool test's input series, up to `evalMinute`. */
function evidenceOf (series: Array<{ series: string, values: string }>, evalMinute: number): EvidenceSums | undefined {
  const sums: Record<string, number> = { probability_rows: 0 }
  for (const s of series) {
    const stat = /^onnx_sidecar_rollout_evidence_total\{.*stat="(\w+)"/.exec(s.series)?.[1]
    if (stat === undefined) continue
    const values = expandValues(s.values)
    if (values[0] !== 0) throw new Error(`${s.series}: starts at ${String(values[0])}; increase() is exact only from 0`)
    sums[stat] = (sums[stat] ?? 0) + counterIncrease(values, evalMinute)
  }
  return sums.rows === undefined ? undefined : sums as unknown as EvidenceSums
}

t.test('the bounds the promtool tests expect are what stats.ts computes from their series', async t => {
  const zRule = prometheusRule().groups.flatMap(g => g.rules).find(r => r.record === 'onnx_sidecar:rollout_z')
  const z = Number(/\*\s*([\d.]+)\s*$/.exec(zRule?.expr.trim() ?? '')?.[1])
  t.equal(z, Number(TEST_ARGS.z), 'the rules and the template tests use the same z')
  const checks: Record<string, (p: ReturnType<typeof pooled>, labels: string) => number | undefined> = {
    'onnx_sidecar:rollout_agreement:ratio1d': p => p.agreement,
    'onnx_sidecar:rollout_effective_rows:1d': p => p.effective,
    'onnx_sidecar:rollout_agreement_lower_bound:1d': p => p.lower,
    'onnx_sidecar:rollout_agreement_upper_bound:1d': p => p.upper,
    'flagger:onnx_sidecar_agreement_lower_bound': p => p.lower,
    'flagger:onnx_sidecar_agreement_upper_bound': p => p.upper,
    'argo:onnx_sidecar_agreement:agreement_bounds': (p, labels) => labels.includes('bound="lower"') ? p.lower : labels.includes('bound="upper"') ? p.upper : undefined
  }
  let compared = 0
  for (const file of ['rollout-rules.test.yaml', 'templates.test.yaml']) {
    const doc = parse(readFileSync(new URL(`tests/${file}`, MONITORING_DIR), 'utf8')) as { tests: Array<{ name: string, input_series: Array<{ series: string, values: string }>, promql_expr_test?: Array<{ expr: string, eval_time: string, exp_samples: Array<{ labels: string, value: number }> }> }> }
    for (const test of doc.tests) {
      for (const e of test.promql_expr_test ?? []) {
        const check = checks[e.expr]
        if (check === undefined) continue
        const minute = Number(/^(\d+)m$/.exec(e.eval_time)?.[1])
        const sums = evidenceOf(test.input_series, minute)
        if (sums === undefined) continue
        const p = pooled(sums, z)
        for (const s of e.exp_samples) {
          const want = check(p, s.labels)
          if (want === undefined) continue
          t.ok(Math.abs(s.value - want) <= 1e-9 * Math.max(1, Math.abs(want)), `${file} '${test.name}': ${e.expr} ${s.value} = stats.ts ${want}`)
          compared++
        }
      }
    }
  }
  t.ok(compared >= 10, `${compared} expected values checked`)
})

t.test('promtool series values and counter resets', async t => {
  t.same(expandValues('0 5x2 1+2x2 _ 3-1x1 stale'), [0, 5, 5, 5, 1, 3, 5, undefined, 3, 2, undefined])
  t.equal(counterIncrease([0, 10, 20, 5, 15]), 35, 'a reset counts from 0')
  t.equal(counterIncrease([0, 10, 20, 5, 15], 2), 20)
  t.throws(() => expandValues('0 x'), /cannot read 'x'/)
})
