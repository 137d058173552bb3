import t from 'tap'
import { readFileSync } from 'node:fs'
import { VERSION } from '../../common/version.js'

t.test('the compiled-in version is package.json\'s', async t => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  t.equal(VERSION, pkg.version, 'common/version.ts matches package.json')
  t.match(VERSION, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'a semantic version')
})
