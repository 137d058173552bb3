/**
 * The README reaches every docs page in one click, and every relative link in the
 * documentation points at a file (and heading) that exists.
 */
import t from 'tap'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { ROOT } from '../../scripts/docs-reference.js'

const DOCS = ['README.md', 'CONTRIBUTING.md', ...readdirSync(path.join(ROOT, 'docs')).filter(f => f.endsWith('.md')).map(f => `docs/${f}`),
  ...readdirSync(path.join(ROOT, 'bench/results')).filter(f => /^\d{4}-\d{2}-\d{2}-.*\.md$/.test(f)).map(f => `bench/results/${f}`)]

/** Markdown links outside code blocks and code spans: [text](target). */
function links (text: string): string[] {
  const prose = text.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '')
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map(m => m[1] as string)
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors (text: string): Set<string> {
  const out = new Set<string>()
  const prose = text.replace(/^```[\s\S]*?^```/gm, '')
  for (const m of prose.matchAll(/^#{1,6} (.+)$/gm)) {
    out.add((m[1] as string).trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-'))
  }
  return out
}

t.test('the README links every page in docs/', async t => {
  const readme = links(readFileSync(path.join(ROOT, 'README.md'), 'utf8'))
  const pages = readdirSync(path.join(ROOT, 'docs')).filter(f => f.endsWith('.md'))
  t.ok(pages.length >= 9, `${pages.length} pages`)
  for (const p of pages) t.ok(readme.includes(`docs/${p}`), `README links docs/${p}`)
  t.ok(readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n').length <= 200, 'README stays short (at most 200 lines)')
})

t.test('relative links point at files and headings that exist', async t => {
  for (const doc of DOCS) {
    const dir = path.dirname(path.join(ROOT, doc))
    for (const link of links(readFileSync(path.join(ROOT, doc), 'utf8'))) {
      if (/^[a-z]+:/.test(link)) continue // http(s), mailto
      const [file = '', anchor] = link.split('#')
      const target = file === '' ? path.join(ROOT, doc) : path.resolve(dir, file)
      t.ok(existsSync(target), `${doc}: ${link} exists`)
      if (anchor !== undefined && existsSync(target) && statSync(target).isFile() && target.endsWith('.md')) {
        t.ok(anchors(readFileSync(target, 'utf8')).has(anchor), `${doc}: ${link} names a heading`)
      }
    }
  }
})
