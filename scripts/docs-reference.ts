/**
 * The generated parts of docs/: reference tables rendered from the code that defines them,
 * so a description written once (next to the parser that applies it) is what users read.
 *
 * - docs/annotations.md     ← `ANNOTATIONS` in injector/annotations.ts
 * - docs/configuration.md   ← the option tables of `serve`, `webhook` and `inject`
 * - docs/check.md           ← the option table of `check`
 * - docs/helm-values.md     ← helm/onnx-sidecar/values.yaml, helm-docs style `# --` comments
 *
 * A page holds each generated section between two markers:
 *   <!-- generated:NAME start (npm run docs writes this; edit SOURCE instead) -->
 *   ...
 *   <!-- generated:NAME end -->
 * and everything outside the markers is hand-written prose that `npm run docs` keeps.
 * `scripts/gen-docs.ts` writes the pages; test/docs/reference.test.ts fails when one is stale.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import type { Option, OptionTable } from '../common/config.js'
import { ANNOTATIONS } from '../injector/annotations.js'
import { serveOptions } from '../common/serve-options.js'
import { WEBHOOK_OPTIONS } from '../injector/webhook-command.js'
import { INJECT_OPTIONS } from '../injector/inject-command.js'
import { checkOptions } from '../sidecar/check/options.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const VALUES_FILE = 'helm/onnx-sidecar/values.yaml'

/** One generated section: where it lives, what it is rendered from, and its text. */
export interface Section {
  page: string
  name: string
  source: string
  render: () => string
}

// ---- markdown helpers --------------------------------------------------------

/** A table cell: one line, pipes escaped. */
export function cell (text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|').trim()
}

function code (text: string): string {
  // a code span that survives backticks inside the value
  return text.includes('`') ? '`` ' + text + ' ``' : '`' + text + '`'
}

function table (head: string[], rows: string[][]): string {
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`]
  for (const r of rows) lines.push(`| ${r.map(cell).join(' | ')} |`)
  return lines.join('\n') + '\n'
}

// ---- annotations -------------------------------------------------------------

export function renderAnnotations (specs: Record<string, { key: string, description: string, defaultText: string, example: string }> = ANNOTATIONS): string {
  const rows = Object.values(specs).map(a => [code(a.key), a.description, a.defaultText, code(a.example)])
  return table(['annotation', 'meaning', 'default', 'example'], rows)
}

// ---- command-line options ----------------------------------------------------

function optionDefault (opt: Option<unknown>): string {
  if (opt.boolean === true) return '—'
  if (opt.defaultText !== undefined) return opt.defaultText
  const v = opt.default
  if (Array.isArray(v)) return v.length === 0 ? '—' : code(v.join(','))
  if (v === '' || v === null || v === undefined) return '—'
  return code(String(v))
}

/** The deprecated names of an option that still work (common/config.ts `deprecatedFlag`, `deprecatedEnv`). */
function formerNames (opt: Option<unknown>): string {
  const names = [opt.deprecatedFlag, opt.deprecatedEnv].filter((n): n is string => n !== undefined).map(code)
  return names.length === 0 ? '' : `. Deprecated, still read: ${names.join(', ')}`
}

export function renderOptions (options: OptionTable): string {
  const rows = Object.values(options).map(o => [
    [o.short, o.flag].filter((f): f is string => f !== undefined).map(code).join(', '),
    o.env === '' ? '—' : code(o.env),
    optionDefault(o),
    o.description + formerNames(o)
  ])
  return table(['flag', 'variable', 'default', 'meaning'], rows)
}

// ---- chart values (helm-docs style) ------------------------------------------

export interface ValueDoc {
  key: string
  type: string
  default: unknown
  description: string
}

function typeOf (v: unknown): string {
  if (Array.isArray(v)) return 'list'
  if (v === null) return 'string'
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float'
  if (typeof v === 'boolean') return 'bool'
  if (typeof v === 'object') return 'object'
  return 'string'
}

function lookup (obj: unknown, keys: string[]): unknown {
  let cur = obj
  for (const k of keys) cur = (cur as Record<string, unknown> | undefined)?.[k]
  return cur
}

/**
 * helm-docs' rules, for the block-style YAML a chart's values use: a `# -- text` comment
 * (continued by the `#` lines right under it) documents the key on the next line, and
 * that key is listed whole (an object with a `# --` comment is one row). A key without
 * one is a section when its value is a non-empty map (its children are listed), else a
 * row with an empty description.
 */
export function valueDocs (text: string): ValueDoc[] {
  const values = parseYaml(text) as Record<string, unknown>
  const docs: ValueDoc[] = []
  const stack: Array<{ indent: number, key: string }> = []
  let comment: string[] | null = null
  let documentedDepth = Infinity // keys below a documented object are part of its row
  for (const line of text.split('\n')) {
    const trimmed = line.trim()
    if (trimmed === '') { comment = null; continue }
    if (trimmed.startsWith('#')) {
      const body = trimmed.replace(/^#\s?/, '')
      if (body.startsWith('-- ')) comment = [body.slice(3).trim()]
      else if (comment !== null) comment.push(body.trim())
      continue
    }
    const m = /^(\s*)([A-Za-z0-9_.-]+|"[^"]+"):(\s|$)/.exec(line)
    if (m === null) { comment = null; continue } // a list item or a continued value
    const indent = (m[1] as string).length
    const key = (m[2] as string).replace(/^"|"$/g, '')
    while (stack.length > 0 && (stack[stack.length - 1] as { indent: number }).indent >= indent) stack.pop()
    if (stack.length <= documentedDepth) documentedDepth = Infinity
    const keys = [...stack.map(s => s.key), key]
    stack.push({ indent, key })
    if (documentedDepth < stack.length) { comment = null; continue }
    const value = lookup(values, keys)
    const isSection = value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0
    if (comment !== null) {
      docs.push({ key: keys.join('.'), type: typeOf(value), default: value, description: comment.join(' ') })
      if (isSection) documentedDepth = stack.length - 1
    } else if (!isSection) {
      docs.push({ key: keys.join('.'), type: typeOf(value), default: value, description: '' })
    }
    comment = null
  }
  return docs
}

export function renderValues (text: string): string {
  const rows = valueDocs(text).map(d => [code(d.key), d.type, code(JSON.stringify(d.default)), d.description])
  return table(['key', 'type', 'default', 'description'], rows)
}

// ---- the sections and the pages ----------------------------------------------

export function sections (root = ROOT): Section[] {
  return [
    { page: 'docs/annotations.md', name: 'annotations', source: 'injector/annotations.ts (ANNOTATIONS)', render: () => renderAnnotations() },
    { page: 'docs/configuration.md', name: 'serve-flags', source: 'common/serve-options.ts (SERVE_DEFAULTS, serveOptions)', render: () => renderOptions(serveOptions()) },
    { page: 'docs/configuration.md', name: 'webhook-flags', source: 'injector/webhook-command.ts (WEBHOOK_OPTIONS) and injector/webhook-defaults.ts (WEBHOOK_DEFAULTS)', render: () => renderOptions(WEBHOOK_OPTIONS) },
    { page: 'docs/configuration.md', name: 'inject-flags', source: 'injector/inject-command.ts (INJECT_DEFAULTS, INJECT_OPTIONS)', render: () => renderOptions(INJECT_OPTIONS) },
    { page: 'docs/check.md', name: 'check-flags', source: 'sidecar/check/options.ts (CHECK_DEFAULTS, checkOptions)', render: () => renderOptions(checkOptions()) },
    { page: 'docs/helm-values.md', name: 'helm-values', source: `${VALUES_FILE} (# -- comments)`, render: () => renderValues(readFileSync(path.join(root, VALUES_FILE), 'utf8')) }
  ]
}

export function startMarker (s: Pick<Section, 'name' | 'source'>): string {
  return `<!-- generated:${s.name} start (npm run docs writes this section; edit ${s.source} instead) -->`
}

export function endMarker (s: Pick<Section, 'name'>): string {
  return `<!-- generated:${s.name} end -->`
}

function escapeRegExp (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * The page with every one of its sections replaced by `rendered` (section name → text).
 * Throws when a section's markers are missing or out of order: the page must say where
 * generated text goes.
 */
export function applySections (page: string, text: string, secs: Array<Pick<Section, 'name' | 'source'>>, rendered: Map<string, string>): string {
  let out = text
  for (const s of secs) {
    const re = new RegExp(`<!-- generated:${escapeRegExp(s.name)} start[^>]*-->\\n[\\s\\S]*?<!-- generated:${escapeRegExp(s.name)} end -->`)
    if (!re.test(out)) throw new Error(`${page}: no generated section '${s.name}' (add the lines ${startMarker(s)} and ${endMarker(s)})`)
    const body = rendered.get(s.name) ?? ''
    out = out.replace(re, () => `${startMarker(s)}\n${body}${endMarker(s)}`)
  }
  return out
}

export interface PageResult {
  page: string
  current: string
  expected: string
  /** Sections whose text differs from what the code renders. */
  stale: string[]
}

/** Renders every page from the code without writing anything. */
export function renderPages (root = ROOT): PageResult[] {
  const byPage = new Map<string, Section[]>()
  for (const s of sections(root)) byPage.set(s.page, [...(byPage.get(s.page) ?? []), s])
  const results: PageResult[] = []
  for (const [page, secs] of byPage) {
    const current = readFileSync(path.join(root, page), 'utf8')
    const rendered = new Map(secs.map(s => [s.name, s.render()]))
    const expected = applySections(page, current, secs, rendered)
    const stale = secs.filter(s => !current.includes(`${startMarker(s)}\n${rendered.get(s.name) ?? ''}${endMarker(s)}`)).map(s => s.name)
    results.push({ page, current, expected, stale })
  }
  return results
}
