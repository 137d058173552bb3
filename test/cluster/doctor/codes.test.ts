import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { CODES } from '../../../cluster/doctor/findings.js'
import { doctorOptions } from '../../../cluster/doctor/options.js'

const page = readFileSync(fileURLToPath(new URL('../../../docs/troubleshooting.md', import.meta.url)), 'utf8')

t.test('docs/troubleshooting.md lists every code with its title, and explains each in a section', async t => {
  const table = new Map([...page.matchAll(/^\| \[`(OSD_[A-Z_]+)`\]\([^)]*\) \| [^|]+ \| ([^|]+) \|$/gm)].map(m => [m[1], m[2]?.trim()]))
  t.same([...table.keys()].sort(), Object.keys(CODES).sort(), 'the table holds exactly the codes doctor has')
  for (const [code, title] of Object.entries(CODES)) {
    t.equal(table.get(code), title, `${code}'s title`)
    t.match(page, new RegExp(`^### .*\\b${code}\\b`, 'm'), `${code} has a section`)
  }
})

t.test('the flag table names every flag of the option table', async t => {
  for (const opt of Object.values(doctorOptions())) {
    if (opt.flag === '--help') continue
    t.match(page, new RegExp(`^\\| ${opt.short === undefined ? '' : `\`${opt.short}\`, `}\`${opt.flag}\` \\|`, 'm'), `${opt.flag} is documented`)
  }
})
