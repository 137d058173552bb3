/**
 * The generated references in docs/ match the code they are generated from, and the
 * generator keeps hand-written prose and follows helm-docs' rules.
 */
import t from 'tap'
import { ANNOTATIONS } from '../../injector/annotations.js'
import { serveOptions } from '../../common/serve-options.js'
import { WEBHOOK_OPTIONS } from '../../injector/webhook-command.js'
import { INJECT_OPTIONS } from '../../injector/inject-command.js'
import { applySections, cell, endMarker, renderAnnotations, renderOptions, renderPages, sections, startMarker, valueDocs } from '../../scripts/docs-reference.js'

t.test('every generated section in docs/ is up to date', async t => {
  const pages = renderPages()
  t.same([...new Set(sections().map(s => s.page))].sort(), ['docs/annotations.md', 'docs/check.md', 'docs/configuration.md', 'docs/helm-values.md'])
  for (const r of pages) {
    t.ok(r.current === r.expected, r.current === r.expected
      ? `${r.page} is up to date`
      : `${r.page}: generated section(s) ${r.stale.join(', ')} out of date with the code; run npm run docs`)
  }
})

t.test('the annotation reference lists every annotation with its description, default and example', async t => {
  const text = renderAnnotations()
  for (const a of Object.values(ANNOTATIONS)) {
    t.match(text, `| \`${a.key}\` | ${cell(a.description)} | ${cell(a.defaultText)} |`, a.key)
  }
})

t.test('the flag references list every flag and variable of serve, webhook and inject', async t => {
  for (const [name, table] of [['serve', serveOptions()], ['webhook', WEBHOOK_OPTIONS], ['inject', INJECT_OPTIONS]] as const) {
    const text = renderOptions(table)
    for (const o of Object.values(table)) {
      t.match(text, `\`${o.flag}\``, `${name} ${o.flag}`)
      if (o.env !== '') t.match(text, `| \`${o.env}\` |`, `${name} ${o.env}`)
      t.match(text, cell(o.description), `${name} ${o.flag} description`)
      for (const former of [o.deprecatedFlag, o.deprecatedEnv]) if (former !== undefined) t.match(text, `\`${former}\``, `${name} ${o.flag}: its deprecated name ${former}`)
    }
  }
})

t.test('applySections replaces only the text between the markers', async t => {
  const s = { name: 'x', source: 'somewhere' }
  const page = `# Title\n\nprose before\n\n${startMarker(s)}\nold table\n${endMarker(s)}\n\nprose after\n`
  const out = applySections('p.md', page, [s], new Map([['x', '| new |\n']]))
  t.equal(out, `# Title\n\nprose before\n\n${startMarker(s)}\n| new |\n${endMarker(s)}\n\nprose after\n`)
  t.equal(applySections('p.md', out, [s], new Map([['x', '| new |\n']])), out, 'applying twice changes nothing')
  t.throws(() => applySections('docs/p.md', '# no markers\n', [s], new Map()), /docs\/p\.md: no generated section 'x'/)
})

t.test('a hand-edited or outdated section is reported with its page and name', async t => {
  const { mkdtempSync, mkdirSync, readFileSync, writeFileSync, cpSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const path = await import('node:path')
  const { ROOT, VALUES_FILE } = await import('../../scripts/docs-reference.js')
  const root = mkdtempSync(path.join(tmpdir(), 'docs-'))
  t.teardown(() => { rmSync(root, { recursive: true, force: true }) })
  mkdirSync(path.join(root, 'docs'))
  mkdirSync(path.dirname(path.join(root, VALUES_FILE)), { recursive: true })
  for (const page of new Set(sections().map(s => s.page))) {
    const r = renderPages().find(p => p.page === page)
    writeFileSync(path.join(root, page), r?.expected ?? '')
  }
  cpSync(path.join(ROOT, VALUES_FILE), path.join(root, VALUES_FILE))
  t.same(renderPages(root).flatMap(r => r.stale), [], 'a fresh copy is up to date')

  const webhook = sections().find(s => s.name === 'webhook-flags')
  if (webhook === undefined) throw new Error('no webhook-flags section')
  const page = path.join(root, webhook.page)
  writeFileSync(page, readFileSync(page, 'utf8').replace(endMarker(webhook), '| `--typed-by-hand` | | | |\n' + endMarker(webhook)))
  const values = path.join(root, VALUES_FILE)
  writeFileSync(values, readFileSync(values, 'utf8') + '# -- A value added without running npm run docs.\nnewValue: 1\n')
  const stale = renderPages(root).filter(r => r.stale.length > 0).map(r => `${r.page}: ${r.stale.join(', ')}`)
  t.same(stale, ['docs/configuration.md: webhook-flags', 'docs/helm-values.md: helm-values'])
  t.match(renderPages(root).find(r => r.page === 'docs/helm-values.md')?.expected, '| `newValue` | int | `1` | A value added without running npm run docs. |')
})

t.test('chart values follow helm-docs: a # -- comment documents the key below it, objects whole', async t => {
  const yaml = [
    '# A header comment, not a description.',
    '',
    '# -- Top-level string.',
    'name: ""',
    '# A section without # --: its children are listed.',
    'group:',
    '  # -- A documented object is one row,',
    '  # continued on the next comment line.',
    '  resources:',
    '    limits:',
    '      memory: 1Gi',
    '  # -- A number.',
    '  replicas: 2',
    '  undocumented: true',
    '  # -- A list.',
    '  items: [a, b]',
    '  nested:',
    '    # -- Deeper.',
    '    flag: false',
    '# -- After a nested section.',
    'last: {}'
  ].join('\n')
  t.same(valueDocs(yaml), [
    { key: 'name', type: 'string', default: '', description: 'Top-level string.' },
    { key: 'group.resources', type: 'object', default: { limits: { memory: '1Gi' } }, description: 'A documented object is one row, continued on the next comment line.' },
    { key: 'group.replicas', type: 'int', default: 2, description: 'A number.' },
    { key: 'group.undocumented', type: 'bool', default: true, description: '' },
    { key: 'group.items', type: 'list', default: ['a', 'b'], description: 'A list.' },
    { key: 'group.nested.flag', type: 'bool', default: false, description: 'Deeper.' },
    { key: 'last', type: 'object', default: {}, description: 'After a nested section.' }
  ])
})

t.test('every chart value has a description', async t => {
  const { readFileSync } = await import('node:fs')
  const { ROOT, VALUES_FILE } = await import('../../scripts/docs-reference.js')
  const docs = valueDocs(readFileSync(`${ROOT}/${VALUES_FILE}`, 'utf8'))
  t.ok(docs.length >= 40, `${docs.length} values`)
  t.same(docs.filter(d => d.description === '').map(d => d.key), [], 'values without a # -- comment in values.yaml')
})
