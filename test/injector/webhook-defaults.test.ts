/** The webhook's one defaults object, and the two values it derives at start-up. */
import t from 'tap'
import { defaultProcesses, defaultRequestMemory, MAX_DEFAULT_PROCESSES, WEBHOOK_DEFAULTS } from '../../injector/webhook-defaults.js'
import { build } from '../../injector/webhook-server.js'
import { DEFAULT_MEMORY_BUDGET } from '../../common/memory-limit.js'
import { createLogger } from '../../common/logger.js'
import { servingFiles } from '../fixtures/injector/certs.js'
import { logSink, waitFor } from '../fixtures/injector/helpers.js'

const MiB = 1024 * 1024

t.test('frozen', async t => {
  t.ok(Object.isFrozen(WEBHOOK_DEFAULTS))
})

t.test('the default process count is the CPU limit, at most MAX_DEFAULT_PROCESSES', async t => {
  t.equal(defaultProcesses(1), 1)
  t.equal(defaultProcesses(2), Math.min(2, MAX_DEFAULT_PROCESSES))
  t.equal(defaultProcesses(64), MAX_DEFAULT_PROCESSES, 'a node\'s core count without a limit does not fork a process per core')
})

t.test('request memory per process: a quarter of the memory limit, shared, at least 16 MiB', async t => {
  t.equal(defaultRequestMemory(2, 384 * MiB), 48 * MiB, 'the chart\'s 384Mi and 2 processes: 48 MiB each')
  t.equal(defaultRequestMemory(1, DEFAULT_MEMORY_BUDGET), 128 * MiB, 'no limit (512 MiB assumed), one process: 128 MiB, as docs/configuration.md says')
  t.equal(defaultRequestMemory(4, 128 * MiB), 16 * MiB, 'never below 16 MiB')
})

t.test('the in-process server without --request-memory gets what one process of the command gets', async t => {
  const dir = t.testdir({})
  await servingFiles(dir, '0d')
  const sink = logSink()
  const webhook = build({ tlsCertFile: `${dir}/tls.crt`, tlsKeyFile: `${dir}/tls.key`, logger: createLogger({ level: 'info', name: 'test', stream: sink.stream }) })
  t.teardown(async () => { await webhook.close() })
  await webhook.listen({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0 })
  await waitFor('the listening line', () => sink.lines().some(l => l.msg === 'injector listening'))
  const listening = sink.lines().find(l => l.msg === 'injector listening') as Record<string, unknown>
  t.same([listening.requestMemory, listening.maxConnections], [defaultRequestMemory(1), WEBHOOK_DEFAULTS.maxConnections])
})
