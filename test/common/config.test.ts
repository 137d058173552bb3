import t from 'tap'
import { readConfig, parse, helpText, ConfigError, otelRequested, type Option } from '../../common/config.js'
import { serveOptions } from '../../common/serve-options.js'

const table = {
  port: { flag: '--port', env: 'X_PORT', description: 'port', default: 8500, parse: parse.port } as Option<number>,
  name: { flag: '--name', short: '-n', env: 'X_NAME', description: 'name', default: 'a', parse: parse.string } as Option<string>,
  verbose: { flag: '--verbose', env: '', description: 'chatty', default: false, boolean: true, parse: parse.bool } as Option<boolean>,
  size: { flag: '--size', env: 'X_SIZE', description: 'size', default: 1024, parse: parse.bytes } as Option<number>,
  mode: { flag: '--mode', env: 'X_MODE', description: 'mode', default: 'a', parse: parse.oneOf('a', 'b') } as Option<'a' | 'b'>
}

t.test('flag beats environment beats default', async t => {
  t.same(readConfig(table, [], {}).port, 8500)
  t.same(readConfig(table, [], { X_PORT: '9000' }).port, 9000)
  t.same(readConfig(table, ['--port', '9100'], { X_PORT: '9000' }).port, 9100)
  t.same(readConfig(table, ['--port=9200'], {}).port, 9200)
  t.same(readConfig(table, ['-n', 'b'], {}).name, 'b')
  t.same(readConfig(table, ['--verbose'], {}).verbose, true)
  t.same(readConfig(table, ['x', '--', '--port'], {})._, ['x', '--port'])
  t.same(readConfig(table, ['-'], {})._, ['-'])
  t.same(readConfig(table, [], { X_PORT: '' }).port, 8500, 'an empty variable counts as unset')
})

t.test('errors name the flag or the variable', async t => {
  t.throws(() => readConfig(table, ['--port', '0'], {}), new ConfigError('flag --port: 0 is outside 1..65535'))
  t.throws(() => readConfig(table, [], { X_PORT: 'http' }), /environment variable X_PORT: 'http' is not an integer/)
  t.throws(() => readConfig(table, ['--nope'], {}), /unknown flag '--nope'/)
  t.throws(() => readConfig(table, ['--port'], {}), /flag '--port' needs a value/)
  t.throws(() => readConfig(table, ['--mode', 'c'], {}), /'c' is not one of a, b/)
  t.throws(() => readConfig(table, ['--size', 'lots'], {}), /is not a size/)
})

t.test('parsers', async t => {
  t.equal(parse.bytes('64mb'), 64 * 1024 * 1024)
  t.equal(parse.bytes('512KiB'), 512 * 1024)
  t.equal(parse.bytes('10'), 10)
  t.equal(parse.bool('off'), false)
  t.throws(() => parse.bool('maybe'), /not a boolean/)
  t.equal(parse.number(0, 1)(' 0.98 '), 0.98)
  t.throws(() => parse.number(0, 1)('1.5'), /1.5 is outside 0..1/)
  t.throws(() => parse.number(0, 1)(''), /is not a number/)
  t.throws(() => parse.number(0, 1)('NaN'), /is not a number/)
})

t.test('sizes: what serve took before, and Kubernetes quantities', async t => {
  const MiB = 2 ** 20
  for (const [text, bytes] of [
    ['64mb', 64 * MiB], ['64MB', 64 * MiB], ['512kb', 512 * 1024], ['1gib', 2 ** 30], ['64 mb', 64 * MiB], ['1048576', MiB], ['0', 0], // as before
    ['512Mi', 512 * MiB], ['0.5Gi', 2 ** 29], ['256M', 256e6], ['1e3', 1000], ['1E3', 1000], ['128Ki', 128 * 1024], ['1.5k', 1500], ['2G', 2e9]
  ] as const) t.equal(parse.bytes(text), bytes, text)
  for (const bad of ['512mi', '1.5mb', '-1', '100m', 'lots', '1Xi', '8Ei']) t.throws(() => parse.bytes(bad), new RegExp(`^'${bad}' is`), bad)
  t.throws(() => parse.bytes('100m'), /less than one byte \(the suffix m is milli/)
  t.equal(readConfig(table, [], { X_SIZE: '512Mi' }).size, 512 * MiB, 'a variable takes the quantity a pod spec holds')
})

t.test('serve\'s size options take Kubernetes quantities', async t => {
  const MiB = 2 ** 20
  const serve = (env: Record<string, string>, ...args: string[]) => readConfig(serveOptions(), args, env)
  t.equal(serve({ ONNX_SIDECAR_MEMORY_LIMIT: '512Mi' }).memoryLimit, 512 * MiB)
  t.equal(serve({}, '--memory-limit', '0.5Gi').memoryLimit, 512 * MiB)
  t.equal(serve({ ONNX_SIDECAR_BODY_LIMIT: '256M' }).bodyLimit, 256e6)
  t.equal(serve({}, '--request-memory', '128Mi').requestMemory, 128 * MiB)
  t.equal(serve({}, '--request-memory', '128mb').requestMemory, 128 * MiB, 'the old spelling still works')
  t.throws(() => serve({ ONNX_SIDECAR_MEMORY_LIMIT: '512 Mi' }), /^environment variable ONNX_SIDECAR_MEMORY_LIMIT: '512 Mi' is not a size/)
})

t.test('help lists flags, defaults and variables', async t => {
  const text = helpText('usage: x', table)
  t.match(text, /--port\n\s+port {2}\(default: 8500\) {2}\[env X_PORT\]/)
  t.match(text, /-n, --name/)
})

t.test('OpenTelemetry is off unless an exporter is configured', async t => {
  t.equal(otelRequested({}), false)
  t.equal(otelRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true)
  t.equal(otelRequested({ OTEL_TRACES_EXPORTER: 'none' }), false)
  t.equal(otelRequested({ OTEL_TRACES_EXPORTER: 'console' }), true)
  t.equal(otelRequested({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }), false)
})

t.test('a deprecated variable still works when the new one is unset, with a notice', async t => {
  const renamed = { port: { flag: '--port', env: 'X_WEBHOOK_PORT', deprecatedEnv: 'X_PORT', description: 'port', default: 8443, parse: parse.port } as Option<number> }
  const old = readConfig(renamed, [], { X_PORT: '9443' })
  t.equal(old.port, 9443)
  t.same(old._deprecated, ['environment variable X_PORT is deprecated for this command; use X_WEBHOOK_PORT (or --port)'])
  const both = readConfig(renamed, [], { X_PORT: '8500', X_WEBHOOK_PORT: '9443' })
  t.same([both.port, both._deprecated], [9443, []], 'the new name wins, silently (the old one may be meant for another command)')
  t.same([readConfig(renamed, ['--port', '7443'], { X_PORT: '9443' }).port, readConfig(renamed, ['--port', '7443'], { X_PORT: '9443' })._deprecated], [7443, []], 'a flag wins over both')
  t.same(readConfig(renamed, [], {})._deprecated, [])
  t.throws(() => readConfig(renamed, [], { X_PORT: 'http' }), /^environment variable X_PORT: 'http' is not an integer/, 'errors name the variable that was read')
  t.match(helpText('usage: x', renamed), '[env X_WEBHOOK_PORT; deprecated: X_PORT]')
})

t.test('a deprecated flag still works, with one notice; the new flag wins over it', async t => {
  const renamed = { processes: { flag: '--processes', deprecatedFlag: '--workers', env: 'X_PROCESSES', deprecatedEnv: 'X_WORKERS', description: 'processes', default: 0, parse: parse.int(1, 64) } as Option<number> }
  const old = readConfig(renamed, ['--workers', '3'], {})
  t.equal(old.processes, 3)
  t.same(old._deprecated, ['flag --workers is deprecated for this command; use --processes'])
  t.equal(readConfig(renamed, ['--workers=4'], {}).processes, 4, 'also as --workers=N')
  t.equal(readConfig(renamed, ['--workers', '3'], { X_PROCESSES: '5' }).processes, 3, 'a flag, even a deprecated one, wins over the environment')
  const both = readConfig(renamed, ['--workers', '3', '--processes', '2'], {})
  t.same([both.processes, both._deprecated], [2, ['flag --workers is deprecated for this command; use --processes (given too, so --workers is ignored)']])
  const after = readConfig(renamed, ['--processes', '2', '--workers', '3'], {})
  t.equal(after.processes, 2, 'whatever the order')
  t.same(readConfig(renamed, ['--processes', '2'], {})._deprecated, [], 'no notice without the old flag')
  t.throws(() => readConfig(renamed, ['--workers', 'two'], {}), /^flag --workers: 'two' is not an integer/, 'errors name the flag that was given')
  t.throws(() => readConfig(renamed, ['--workers'], {}), /^flag '--workers' needs a value$/)
  const env = readConfig(renamed, [], { X_WORKERS: '6' })
  t.same([env.processes, env._deprecated], [6, ['environment variable X_WORKERS is deprecated for this command; use X_PROCESSES (or --processes)']], 'the variable renamed with it works the same way')
  t.match(helpText('usage: x', renamed), '  --processes (deprecated: --workers)\n')
})
