import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { errors, ERROR_CODES, InjectorError } from '../../injector/errors.js'
import { ANNOTATIONS } from '../../injector/annotations.js'
import { CONFIG_SCHEMA } from '../../injector/injection-config.js'

// the README and the pages of docs/ it links (error codes: docs/injection.md; annotations: docs/annotations.md)
const readme = ['README.md', 'docs/injection.md', 'docs/annotations.md'].map(f => readFileSync(fileURLToPath(new URL('../../' + f, import.meta.url)), 'utf8')).join('\n')

t.test('every injector error code is documented in the README with its status', async t => {
  t.ok(ERROR_CODES.length >= 10)
  for (const e of Object.values(errors)) {
    t.match(readme, new RegExp('`' + e.code + '` \\| ' + e.statusCode + ' \\|'), `${e.code} (${e.statusCode}) is in the injector's error table`)
  }
})

t.test('every annotation and every injection config key is documented in the README', async t => {
  for (const a of Object.values(ANNOTATIONS)) t.match(readme, '`' + a.key + '`', a.key)
  for (const key of Object.keys(CONFIG_SCHEMA.properties)) t.match(readme, new RegExp('^\\| `' + key + '[`.]', 'm'), `config key ${key}`)
})

t.test('codes are unique and messages carry their arguments', async t => {
  t.equal(new Set(ERROR_CODES).size, ERROR_CODES.length)
  const e = errors.INVALID_ANNOTATION('onnx-sidecar.io/port', '99999', 'is not a port number (1-65535)')
  t.ok(e instanceof InjectorError)
  t.equal(e.message, 'annotation onnx-sidecar.io/port: "99999" is not a port number (1-65535)')
  t.same([e.code, e.statusCode, e.name], ['OS_ERR_INJ_INVALID_ANNOTATION', 400, 'InjectorError'])
  t.equal(errors.UNKNOWN_VOLUME('k', 'v', []).message, 'annotation k: "v" is not a volume of this pod (volumes: none)')
})
