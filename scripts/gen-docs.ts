/**
 * `npm run docs`: rewrites the generated sections of docs/ from the code (see
 * scripts/docs-reference.ts for what comes from where). `--check` writes nothing and exits 1
 * when a page is stale, naming it.
 */
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { ROOT, renderPages } from './docs-reference.js'

const check = process.argv.includes('--check')
let stale = 0
for (const r of renderPages(ROOT)) {
  if (r.expected === r.current) {
    console.log(`${r.page}: up to date`)
    continue
  }
  if (check) {
    stale++
    console.log(`${r.page}: stale (${r.stale.join(', ')}); run npm run docs`)
  } else {
    writeFileSync(path.join(ROOT, r.page), r.expected)
    console.log(`${r.page}: rewrote ${r.stale.join(', ')}`)
  }
}
process.exitCode = stale === 0 ? 0 : 1
