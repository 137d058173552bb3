/**
 * Log lines stay small whatever a client sends: string fields, the message and an error's
 * message and stack are cut to MAX_LOG_STRING characters with a marker saying how much was
 * cut; short strings and the caller's objects are left alone.
 */
import t from 'tap'
import { memoryLogger } from '../fixtures/sidecar.js'
import { MAX_LOG_STRING, truncateLogString } from '../../common/logger.js'

const HUGE = 1024 * 1024 // a client string as large as a request
const CUT = MAX_LOG_STRING + 40 // what a cut string may take: the kept part and the marker

t.test('long string fields are cut, with how much was cut', async t => {
  const { logger, logs } = memoryLogger()
  const fields = { model: 'm'.repeat(HUGE), reason: `unknown input ${'x'.repeat(HUGE)}`, code: 'OS_ERR_X', status: 400 }
  logger.info(fields, 'inference request failed')
  logger.flush()
  const line = logs[0] as Record<string, unknown>
  t.ok((line.model as string).length <= CUT, `model: ${(line.model as string).length} characters`)
  t.match(line.model as string, new RegExp(`^m{${MAX_LOG_STRING}}…\\(${HUGE - MAX_LOG_STRING} characters truncated\\)$`), 'the start, and how many characters were cut')
  t.match(line.reason as string, /^unknown input x+…\(\d+ characters truncated\)$/)
  t.equal(line.code, 'OS_ERR_X', 'short strings are kept')
  t.equal(line.status, 400, 'other values are kept')
  t.equal(fields.model.length, HUGE, 'the caller\'s object is not changed')
  t.ok(JSON.stringify(line).length < 3 * MAX_LOG_STRING, 'the whole line is a few KiB')
})

t.test('the message is cut, given or taken from an error', async t => {
  const { logger, logs } = memoryLogger()
  logger.info(`model ${'n'.repeat(HUGE)} not found`)
  logger.warn({ model: 'iris' }, 'w'.repeat(HUGE))
  const err = new Error(`bad name ${'e'.repeat(HUGE)}`)
  logger.error(err) // pino takes the error's message as the line's
  logger.error({ err }) // likewise
  logger.error({ err }, 'unexpected error')
  logger.flush()
  t.equal(logs.length, 5)
  for (const line of logs) t.ok((line.msg as string).length <= CUT, `msg: ${(line.msg as string).length} characters`)
  t.match(logs[0]?.msg, /^model n+…\(\d+ characters truncated\)$/)
  t.equal(logs[1]?.model, 'iris', 'fields are kept')
  t.equal(logs[4]?.msg, 'unexpected error', 'a short message is kept')
  for (const line of logs.slice(2)) {
    const e = line.err as Record<string, unknown>
    t.equal(e.type, 'Error')
    t.ok((e.message as string).length <= CUT, `err.message: ${(e.message as string).length} characters`)
    t.ok((e.stack as string).length <= CUT, `err.stack: ${(e.stack as string).length} characters (it starts with the message)`)
  }
})

t.test('an error\'s cause and fields are cut too', async t => {
  const { logger, logs } = memoryLogger()
  const err = Object.assign(new Error('outer', { cause: new Error('c'.repeat(HUGE)) }), { detail: 'd'.repeat(HUGE) })
  logger.error({ err }, 'failed')
  logger.flush()
  const e = logs[0]?.err as Record<string, any>
  t.ok(JSON.stringify(e).length < 8 * MAX_LOG_STRING, `the serialized error: ${JSON.stringify(e).length} characters`)
  t.match(e.detail, /…\(\d+ characters truncated\)$/)
})

t.test('truncateLogString', async t => {
  t.equal(truncateLogString('short'), 'short')
  const exact = 'x'.repeat(MAX_LOG_STRING)
  t.equal(truncateLogString(exact), exact, 'a string of exactly the limit is kept')
  const emoji = 'a'.repeat(MAX_LOG_STRING - 1) + '😀'.repeat(10) // a surrogate pair straddles the limit
  const cut = truncateLogString(emoji)
  t.equal(cut, `${'a'.repeat(MAX_LOG_STRING - 1)}…(${emoji.length - MAX_LOG_STRING + 1} characters truncated)`, 'a surrogate pair is not split')
  t.equal(JSON.stringify(cut).includes('\\ud'), false, 'no lone surrogate')
})
