/**
 * The Argo Rollouts AnalysisTemplates and Flagger MetricTemplates of deploy/monitoring,
 * rendered and judged as the two engines do, so the e2e can run their queries against a
 * real Prometheus (e2e/fleet-templates.ts). Pure, apart from `monitoringDocs`.
 *
 *   Argo      `{{args.NAME}}` (spaces inside the braces trimmed), the template's
 *             `spec.args` with their defaults, overridden by the values supplied; an
 *             argument without a value, or a tag that is no argument, is an error
 *             (argo-rollouts utils/query ResolveArgs). A metric's phase from its
 *             successCondition / failureCondition (utils/evaluate EvaluateResult).
 *   Flagger   Go text/template: `{{ namespace }}`, `{{ target }}`, `{{ interval }}`, ...
 *             and `{{ variables.NAME }}` (a Canary's templateVariables). Flagger writes
 *             "<no value>" for a missing variable; here it is an error. A check fails
 *             outside the Canary's thresholdRange.
 */
import { readFileSync } from 'node:fs'
import { parseAllDocuments } from 'yaml'

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects read as YAML */
type Doc = Record<string, any>

export const MONITORING_DIR = new URL('../deploy/monitoring/', import.meta.url)

/** The YAML documents of a file in deploy/monitoring (or `dir`). */
export function monitoringDocs (file: string, dir = MONITORING_DIR): Doc[] {
  return parseAllDocuments(readFileSync(new URL(file, dir), 'utf8')).map((d, i) => {
    if (d.errors.length > 0) throw new Error(`${file}, document ${i + 1}: ${d.errors[0]?.message ?? ''}`)
    return d.toJS() as Doc
  })
}

/** `{{tag}}` of a fasttemplate (Argo) or a Go template action (Flagger); an unclosed `{{` is an error. */
function substitute (text: string, where: string, value: (tag: string) => string): string {
  let out = ''
  let at = 0
  for (;;) {
    const open = text.indexOf('{{', at)
    if (open < 0) return out + text.slice(at)
    const close = text.indexOf('}}', open + 2)
    if (close < 0) throw new Error(`${where}: '{{' without '}}' at ${JSON.stringify(text.slice(open, open + 40))}`)
    out += text.slice(at, open) + value(text.slice(open + 2, close))
    at = close + 2
  }
}

export interface ArgoMetric { template: string, name: string, query: string, address: string, successCondition?: string, failureCondition?: string }

/** An AnalysisTemplate's metrics with `supplied` arguments filled in (the template's defaults for the rest). */
export function renderArgo (template: Doc, supplied: Record<string, string>): ArgoMetric[] {
  const name = String(template.metadata?.name)
  const args = new Map<string, string>()
  for (const a of (template.spec?.args ?? []) as Array<{ name: string, value?: string }>) {
    const v = supplied[a.name] ?? a.value
    if (v === undefined) throw new Error(`AnalysisTemplate ${name}: argument "${a.name}" was not supplied`)
    args.set(`args.${a.name}`, String(v))
  }
  const resolve = (text: string | undefined, field: string): string | undefined => text === undefined
    ? undefined
    : substitute(text, `AnalysisTemplate ${name} ${field}`, tag => {
      const v = args.get(tag.trim())
      if (v === undefined) throw new Error(`AnalysisTemplate ${name} ${field}: failed to resolve {{${tag}}}`)
      return v
    })
  return ((template.spec?.metrics ?? []) as Doc[]).map(m => {
    const prom = m.provider?.prometheus
    if (prom?.query === undefined) throw new Error(`AnalysisTemplate ${name} metric ${String(m.name)}: not a Prometheus query`)
    const field = (f: string): string => `metric ${String(m.name)} ${f}`
    const out: ArgoMetric = { template: name, name: String(m.name), query: resolve(prom.query, field('query')) as string, address: resolve(prom.address ?? '', field('address')) as string }
    const success = resolve(m.successCondition, field('successCondition'))
    const failure = resolve(m.failureCondition, field('failureCondition'))
    if (success !== undefined) out.successCondition = success
    if (failure !== undefined) out.failureCondition = failure
    return out
  })
}

/** What Flagger gives a MetricTemplate's query (flagger pkg/metrics/providers MetricTemplateModel). */
export interface FlaggerModel { name?: string, namespace: string, target: string, service?: string, ingress?: string, route?: string, interval: string, variables: Record<string, string> }
const FLAGGER_FIELDS = ['name', 'namespace', 'target', 'service', 'ingress', 'route', 'interval'] as const

/** A MetricTemplate's query rendered for `model`. */
export function renderFlagger (template: Doc, model: FlaggerModel): { template: string, query: string } {
  const name = String(template.metadata?.name)
  const query = template.spec?.query
  if (typeof query !== 'string') throw new Error(`MetricTemplate ${name}: no spec.query`)
  return {
    template: name,
    query: substitute(query, `MetricTemplate ${name}`, tag => {
      const t = tag.trim()
      const variable = /^variables\.([A-Za-z_]\w*)$/.exec(t)
      if (variable !== null) {
        const v = model.variables[variable[1] as string]
        if (v === undefined) throw new Error(`MetricTemplate ${name}: no templateVariable '${variable[1] as string}' ({{${tag}}})`)
        return v
      }
      const field = FLAGGER_FIELDS.find(f => f === t)
      if (field === undefined) throw new Error(`MetricTemplate ${name}: {{${tag}}} is not a Flagger template function`)
      const v = model[field]
      if (v === undefined) throw new Error(`MetricTemplate ${name}: no value for {{${tag}}}`)
      return v
    })
  }
}

/** A thresholdRange of a Canary's metric: the check fails below min or above max. */
export interface ThresholdRange { min?: number, max?: number }

export function flaggerPasses (value: number, range: ThresholdRange): boolean {
  return !(range.min !== undefined && value < range.min) && !(range.max !== undefined && value > range.max)
}

// ------------------------------------------------------------- Argo's conditions

type Value = number | boolean | number[]

/**
 * An Argo Rollouts condition (expr-lang) over `result` (a Prometheus vector's values):
 * the subset the templates use — numbers, true/false, result, result[i], len(x),
 * all/any/none(x, {predicate over #}), ! not, comparisons, && and, || or, parentheses.
 * Anything else, or an index out of range, is an error (Argo: phase Error).
 */
export function evalCondition (condition: string, result: number[]): boolean {
  const tokens = condition.match(/\s*(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|[A-Za-z_]\w*|&&|\|\||[<>=!]=|[-<>!#()[\]{},])/gy)
  if (tokens === null || tokens.join('').length !== condition.trimEnd().length) throw new Error(`condition ${JSON.stringify(condition)}: cannot read it`)
  const ts = tokens.map(t => t.trim())
  let i = 0
  const peek = (): string | undefined => ts[i]
  const take = (want?: string): string => {
    const t = ts[i++]
    if (t === undefined || (want !== undefined && t !== want)) throw new Error(`condition ${JSON.stringify(condition)}: expected ${want ?? 'more'} at token ${i}${t === undefined ? '' : ` '${t}'`}`)
    return t
  }
  const num = (v: Value): number => {
    if (typeof v !== 'number') throw new Error(`condition ${JSON.stringify(condition)}: ${JSON.stringify(v)} is not a number`)
    return v
  }
  const bool = (v: Value): boolean => {
    if (typeof v !== 'boolean') throw new Error(`condition ${JSON.stringify(condition)}: ${JSON.stringify(v)} is not a boolean`)
    return v
  }
  const list = (v: Value): number[] => {
    if (!Array.isArray(v)) throw new Error(`condition ${JSON.stringify(condition)}: ${JSON.stringify(v)} is not an array`)
    return v
  }
  let hash: number | undefined
  // Each level parses (and, with `run`, evaluates) one precedence level; run=false only skips a predicate body.
  const or = (run: boolean): Value => {
    let v = and(run)
    while (peek() === '||' || peek() === 'or') { take(); const r = and(run); v = run ? bool(v) || bool(r) : false }
    return v
  }
  const and = (run: boolean): Value => {
    let v = compare(run)
    while (peek() === '&&' || peek() === 'and') { take(); const r = compare(run); v = run ? bool(v) && bool(r) : false }
    return v
  }
  const compare = (run: boolean): Value => {
    const l = unary(run)
    const op = peek()
    if (op === undefined || !['==', '!=', '<', '<=', '>', '>='].includes(op)) return l
    take()
    const r = unary(run)
    if (!run) return false
    if (op === '==') return num(l) === num(r)
    if (op === '!=') return num(l) !== num(r)
    if (op === '<') return num(l) < num(r)
    if (op === '<=') return num(l) <= num(r)
    if (op === '>') return num(l) > num(r)
    return num(l) >= num(r)
  }
  const unary = (run: boolean): Value => {
    if (peek() === '!' || peek() === 'not') { take(); const v = unary(run); return run ? !bool(v) : false }
    if (peek() === '-') { take(); const v = unary(run); return run ? -num(v) : 0 }
    return postfix(run)
  }
  const postfix = (run: boolean): Value => {
    let v = primary(run)
    while (peek() === '[') {
      take()
      const at = num(or(run))
      take(']')
      if (!run) continue
      const xs = list(v)
      if (!Number.isInteger(at) || at < 0 || at >= xs.length) throw new Error(`condition ${JSON.stringify(condition)}: index ${at} out of range (${xs.length} values)`)
      v = xs[at] as number
    }
    return v
  }
  const primary = (run: boolean): Value => {
    const t = take()
    if (/^\d/.test(t)) return Number(t)
    if (t === 'true' || t === 'false') return t === 'true'
    if (t === 'result') return result
    if (t === '#') {
      if (run && hash === undefined) throw new Error(`condition ${JSON.stringify(condition)}: # outside a predicate`)
      return hash ?? 0
    }
    if (t === '(') { const v = or(run); take(')'); return v }
    if (t === 'len') { take('('); const v = or(run); take(')'); return run ? list(v).length : 0 }
    if (t === 'all' || t === 'any' || t === 'none') {
      take('(')
      const xs = or(run)
      take(',')
      take('{')
      const body = i
      const outer = hash
      let out = t === 'all' || t === 'none'
      for (const x of run ? list(xs) : []) {
        i = body
        hash = x
        const b = bool(or(true))
        hash = outer
        if (t === 'all' && !b) out = false
        if (t === 'any' && b) out = true
        if (t === 'none' && b) out = false
      }
      i = body
      or(false)
      take('}')
      take(')')
      return out
    }
    throw new Error(`condition ${JSON.stringify(condition)}: '${t}' is not supported here`)
  }
  const v = bool(or(true))
  if (i !== ts.length) throw new Error(`condition ${JSON.stringify(condition)}: unexpected '${ts[i] as string}'`)
  return v
}

export type ArgoPhase = 'Successful' | 'Failed' | 'Inconclusive' | 'Error'

/** A measurement's phase from its conditions, as Argo Rollouts decides it (an error in a condition: Error). */
export function argoPhase (m: Pick<ArgoMetric, 'successCondition' | 'failureCondition'>, result: number[]): ArgoPhase {
  let success = false
  let failure = false
  try {
    if (m.successCondition !== undefined) success = evalCondition(m.successCondition, result)
    if (m.failureCondition !== undefined) failure = evalCondition(m.failureCondition, result)
  } catch {
    return 'Error'
  }
  if (m.successCondition === undefined && m.failureCondition === undefined) return 'Successful'
  if (m.failureCondition === undefined) failure = !success
  if (m.successCondition === undefined) success = !failure
  if (failure) return 'Failed'
  return success ? 'Successful' : 'Inconclusive'
}

/** The query without a trailing `or on () vector(N)` (its value when the rollout has no evidence yet); undefined when it has none. */
export function withoutFallback (query: string): string | undefined {
  const m = /^([\s\S]*?)\s+or\s+on\s*\(\s*\)\s*vector\(\s*-?[\d.]+\s*\)\s*$/.exec(query)
  return m?.[1]
}

// ------------------------------------------------- the fleet's rollout, every query

/**
 * The thresholdRange a Flagger Canary gives each MetricTemplate (docs/rollouts.md,
 * "Prometheus, Argo Rollouts and Flagger"; the file's header); null: no check of its own
 * (for dashboards and webhooks).
 */
export const FLAGGER_RANGES: Readonly<Record<string, ThresholdRange | null>> = {
  'onnx-sidecar-agreement-lower-bound': { min: 0.98 },
  'onnx-sidecar-agreement-upper-bound': null,
  'onnx-sidecar-error-excess': { max: 3.09 },
  'onnx-sidecar-latency-excess': { max: 0 },
  'onnx-sidecar-calibration-drift': { max: 0.1 }
}

/** A Deployment's rollout, as `onnx-sidecar rollout status` names it. */
export interface FleetRollout { namespace: string, deployment: string, model: string, live: string, candidate: string }

export interface TemplateQuery {
  engine: 'argo' | 'flagger'
  /** `argo TEMPLATE/METRIC` or `flagger TEMPLATE`. */
  label: string
  query: string
  /** Argo: the metric with its conditions. */
  argo?: ArgoMetric
  /** Flagger: the Canary's thresholdRange (null: none). */
  range?: ThresholdRange | null
}

/**
 * Every query of the AnalysisTemplates (`argoDocs`) and MetricTemplates (`flaggerDocs`)
 * rendered for `r`: Argo with the arguments a Rollout passes (namespace, model,
 * live-version, candidate-version, prometheus-address; threshold and z at the
 * template's defaults), Flagger with the Canary's namespace and target, an interval of
 * 1m and templateVariables model, live_version, candidate_version and z (Argo's default).
 */
export function fleetQueries (argoDocs: Doc[], flaggerDocs: Doc[], r: FleetRollout, prometheusAddress: string): { z: number, queries: TemplateQuery[] } {
  const zs = new Set(argoDocs.flatMap(d => ((d.spec?.args ?? []) as Array<{ name: string, value?: string }>).filter(a => a.name === 'z').map(a => a.value)))
  const [z] = [...zs]
  if (zs.size !== 1 || z === undefined) throw new Error(`the AnalysisTemplates' z defaults: ${JSON.stringify([...zs])} (want one value)`)
  const args = { namespace: r.namespace, model: r.model, 'live-version': r.live, 'candidate-version': r.candidate, 'prometheus-address': prometheusAddress }
  const queries: TemplateQuery[] = argoDocs.flatMap(d => renderArgo(d, args).map(m => ({ engine: 'argo' as const, label: `argo ${m.template}/${m.name}`, query: m.query, argo: m })))
  const model: FlaggerModel = { namespace: r.namespace, target: r.deployment, interval: '1m', variables: { model: r.model, live_version: r.live, candidate_version: r.candidate, z } }
  for (const d of flaggerDocs) {
    const f = renderFlagger(d, model)
    const range = FLAGGER_RANGES[f.template]
    if (range === undefined) throw new Error(`MetricTemplate ${f.template}: no thresholdRange known for it (FLAGGER_RANGES, docs/rollouts.md)`)
    queries.push({ engine: 'flagger', label: `flagger ${f.template}`, query: f.query, range })
  }
  return { z: Number(z), queries }
}
