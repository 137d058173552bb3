import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { errors, MODEL_LOAD_CODES } from '../../../sidecar/core/errors.js'
import { AbandonedError } from '../../../sidecar/core/errors.js'
import { ROOT } from '../../fixtures/sidecar.js'

const readme = readFileSync(path.join(ROOT, 'docs', 'api.md'), 'utf8') // the error table moved from the README to docs/api.md

t.test('every sidecar error code is documented in the README with its status', async t => {
  const codes = Object.values(errors).map(e => [e.code, e.statusCode] as const)
  t.ok(codes.length >= 15)
  for (const [code, status] of codes) {
    t.match(readme, new RegExp('`' + code + '` \\| ' + status + ' \\|'), `${code} (${status}) is in the error table`)
  }
  for (const code of MODEL_LOAD_CODES) t.match(readme, '`' + code + '`', `${code} is documented`)
  t.match(readme, '`' + new AbandonedError().code + '`')
})

t.test('codes are unique and messages carry their arguments', async t => {
  const codes = Object.values(errors).map(e => e.code)
  t.equal(new Set(codes).size, codes.length)
  const e = errors.BAD_INPUT('input', 'shape [1,31] does not match model shape [-1,32]')
  t.equal(e.message, "input 'input': shape [1,31] does not match model shape [-1,32]")
  t.equal(e.statusCode, 400)
  t.same(errors.OVERLOADED('iris', 10).headers, { 'retry-after': '1' })
  t.same(errors.METHOD_NOT_ALLOWED('PUT', '/v2', 'GET').headers, { allow: 'GET' })
})
