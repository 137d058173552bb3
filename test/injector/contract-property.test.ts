/**
 * Property-based: what the injector admits, the sidecar accepts. Over random annotation
 * sets, hostile values included (one model listed twice, thread counts past 256, CPU
 * limits past 129 cores, one-byte memory) and override containers (a memory limit,
 * `ONNX_SIDECAR_MEMORY_LIMIT` / `_REQUEST_MEMORY` / `_WORKERS` in its env), whenever
 * `inject` admits a pod, the injected container's arguments and environment parse with
 * `serve`'s own option table, what `serve` reads is what the annotations asked for, and
 * its workers' idle memory and its request memory fit its memory budget.
 */
import t from 'tap'
import fc from 'fast-check'
import { inject } from '../../injector/inject-pod.js'
import { InjectorError } from '../../injector/errors.js'
import { DEFAULT_CONFIG, resolveInjectionConfig, type InjectionConfig } from '../../injector/injection-config.js'
import { readConfig, LOG_LEVELS } from '../../common/config.js'
import { serveOptions } from '../../common/serve-options.js'
import { parseQuantity, MIN_CPU, MIN_MEMORY } from '../../common/contract.js'

const modelRef = fc.record({
  name: fc.oneof({ weight: 12, arbitrary: fc.constantFrom('iris', 'ranker', 'ctr', 'ResNet50', 'a.b_c-d', 'x'.repeat(128)) }, { weight: 1, arbitrary: fc.constantFrom('bad/name', '.hidden', 'x'.repeat(129)) }),
  version: fc.option(fc.oneof({ weight: 12, arbitrary: fc.constantFrom(1, 3, 4) }, { weight: 1, arbitrary: fc.constantFrom(0, 1e9) }), { nil: undefined })
})
// distinct names mostly; one model listed twice as often as any other hostile value
const models = fc.oneof(
  { weight: 10, arbitrary: fc.uniqueArray(modelRef, { minLength: 1, maxLength: 3, selector: m => m.name }).map(list => list.map(m => m.version === undefined ? m.name : `${m.name}:${m.version}`).join(',')) },
  { weight: 1, arbitrary: fc.array(modelRef, { minLength: 2, maxLength: 3 }).map(list => [...list, list[0]].map(m => m?.version === undefined ? m?.name : `${m.name}:${m.version}`).join(',')) },
  { weight: 1, arbitrary: fc.constantFrom('ranker:3,ranker:4', 'iris,iris', 'iris, ctr:2 ', 'a,,b', '', ' , ', 'x:1:2') }
)
/** Present about one time in `1 + absent`: most pods set a few annotations, so most get through to the sidecar. */
const sometimes = <T>(arb: fc.Arbitrary<T>, absent = 2): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined, freq: 1 + absent })
const portText = fc.oneof(fc.constantFrom('8600', '8601', '9565', '1', '65535', '0', '65536', 'http'), fc.integer({ min: 0, max: 70000 }).map(String))
const threads = fc.oneof(fc.constantFrom('1', '2', '8', '255', '256', '257', '1000', '1024', '0', '2.5'), fc.integer({ min: 0, max: 400 }).map(String))
const cpu = fc.oneof(
  fc.constantFrom('1m', '10m', '49m', '50m', '100m', '500m', '1', '2.5', '3', '64', '128', '129', '130', '131', '200', '1000', '1e6', '1E', '0.01'),
  fc.integer({ min: 1, max: 400 }).map(String)
)
const memory = fc.constantFrom('1', '1k', '1m', '64Mi', '127Mi', '128Mi', '134217728', '256Mi', '512Mi', '1Gi', '2Gi', '1e12', '1Ei', '8Ei')
const annotations = fc.record({
  'onnx-sidecar.io/model': models,
  'onnx-sidecar.io/threads': sometimes(threads),
  'onnx-sidecar.io/cpu': sometimes(cpu),
  'onnx-sidecar.io/cpu-limit': sometimes(cpu, 1),
  'onnx-sidecar.io/memory': sometimes(memory),
  'onnx-sidecar.io/memory-limit': sometimes(memory),
  'onnx-sidecar.io/port': sometimes(portText, 4),
  'onnx-sidecar.io/grpc-port': sometimes(portText, 4),
  'onnx-sidecar.io/metrics-port': sometimes(portText, 4),
  'onnx-sidecar.io/log-level': sometimes(fc.constantFrom(...LOG_LEVELS, 'loud')),
  'onnx-sidecar.io/socket': sometimes(fc.constantFrom('true', 'false')),
  'onnx-sidecar.io/native-sidecar': sometimes(fc.constantFrom('true', 'false'))
}).map(a => JSON.parse(JSON.stringify(a)) as Record<string, string> & { 'onnx-sidecar.io/model': string }) // absent, not undefined

const noLimits = resolveInjectionConfig({ env: [{ name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://collector:4318' }] })
noLimits.resources.limits = {}
const configs: InjectionConfig[] = [DEFAULT_CONFIG, noLimits]

/** The pod's own onnx-sidecar container: sometimes, with size and worker variables `serve` reads (Kubernetes quantities, old spellings, nonsense). */
const size = fc.constantFrom('512Mi', '0.5Gi', '256M', '1e9', '64mb', '1Gi', '2Gi', '64Mi', '163Mi', '100m', 'lots', '512 Mi')
const overrideEnv = fc.record({
  ONNX_SIDECAR_MEMORY_LIMIT: sometimes(size),
  ONNX_SIDECAR_REQUEST_MEMORY: sometimes(fc.constantFrom('32Mi', '64mb', '128Mi', '300Mi', '1Gi', '0.5Mi'), 4),
  ONNX_SIDECAR_WORKERS: sometimes(fc.constantFrom('1', '4', '16', '22', '40', '65', 'x'), 3)
}).map(e => Object.entries(e).filter(([, v]) => v !== undefined).map(([name, value]) => ({ name, value: value as string })))
const override = fc.option(fc.record({
  env: overrideEnv,
  memoryLimit: sometimes(fc.constantFrom('64Mi', '1', '128Mi', '256Mi', '1Gi', '4Gi'), 1)
}), { nil: undefined, freq: 2 })

const input = fc.record({
  annotations,
  override,
  appPort: fc.option(fc.constantFrom(8080, 8500, 9464), { nil: undefined }),
  config: fc.constantFrom(0, 1)
})

const parseServe = (args: string[], env: Record<string, string>) => readConfig(serveOptions(), args, env)

/** The annotation as a user reads it, independent of the code under test. */
function asked (list: string): Array<{ name: string, version?: number }> {
  return list.split(',').map(s => s.trim()).map(item => {
    const [name = '', version] = item.split(':')
    return version === undefined ? { name } : { name, version: Number(version) }
  })
}

t.test('whatever inject admits, serve parses, with the values the annotations asked for', async t => {
  const seen = { injected: 0, denied: 0, bigCpu: 0, ownThreads: 0, overridden: 0 }
  fc.assert(fc.property(input, ({ annotations: ann, override: own, appPort, config: which }) => {
    const config = configs[which] as InjectionConfig
    const ownContainer = own === undefined ? [] : [{ name: 'onnx-sidecar', env: own.env, ...(own.memoryLimit === undefined ? {} : { resources: { limits: { memory: own.memoryLimit } } }) }]
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', annotations: ann },
      spec: { containers: [{ name: 'app', image: 'app:1', ...(appPort === undefined ? {} : { ports: [{ containerPort: appPort }] }) }, ...ownContainer] }
    }
    let result
    try {
      result = inject(pod, config)
    } catch (err) {
      if (!(err instanceof InjectorError)) throw err
      if (!/^annotation onnx-sidecar\.io\/[a-z-]+: |^container onnx-sidecar \(overrides\): (resources\.limits\.memory|env ONNX_SIDECAR_[A-Z_]+): /.test(err.message)) throw new Error(`the denial does not name the annotation or the field: ${err.message}`)
      seen.denied++
      return
    }
    if (result.outcome !== 'injected') throw new Error(`outcome ${result.outcome}`)
    seen.injected++
    const spec = (result.pod as any).spec
    const sidecar = [...(spec.initContainers ?? []), ...spec.containers].find((c: any) => c.name === 'onnx-sidecar')
    const env: Record<string, string> = {}
    for (const e of sidecar.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value
    let opts: ReturnType<typeof parseServe>
    try {
      opts = parseServe(sidecar.args, env)
    } catch (err) {
      throw new Error(`admitted ${JSON.stringify(ann)}, but serve refuses its arguments ${JSON.stringify(sidecar.args)}: ${(err as Error).message}`)
    }
    const port = (key: string, fallback: number): number => ann[key] === undefined ? fallback : Number(ann[key])
    if (JSON.stringify(opts._) !== '["serve"]') throw new Error(`positional arguments ${JSON.stringify(opts._)}`)
    const want = {
      model: asked(ann['onnx-sidecar.io/model']),
      port: port('onnx-sidecar.io/port', config.ports.inference),
      grpcPort: port('onnx-sidecar.io/grpc-port', config.ports.grpc),
      metricsPort: port('onnx-sidecar.io/metrics-port', config.ports.metrics),
      logLevel: ann['onnx-sidecar.io/log-level'] ?? config.logLevel
    }
    const got = { model: opts.model, port: opts.port, grpcPort: opts.grpcPort, metricsPort: opts.metricsPort, logLevel: opts.logLevel }
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`serve reads ${JSON.stringify(got)}, the annotations asked for ${JSON.stringify(want)}`)
    // the CPUs the injector plans for: the limit, else the request, rounded up
    const cores = sidecar.resources.limits?.cpu ?? sidecar.resources.requests?.cpu
    const cpus = cores === undefined ? 1 : Math.ceil(parseQuantity(cores).value)
    // the memory serve sizes itself for: --memory-limit, else the container's limit, else 512 MiB; a quarter of it for requests unless given
    const MiB = 2 ** 20
    const limit = sidecar.resources.limits?.memory === undefined ? undefined : Math.ceil(parseQuantity(sidecar.resources.limits.memory).value)
    const budget = opts.memoryLimit > 0 ? opts.memoryLimit : limit ?? 512 * MiB
    if (limit !== undefined && budget > limit) throw new Error(`serve sizes itself for ${budget} bytes in a ${limit}-byte container`)
    const pool = opts.requestMemory > 0 ? opts.requestMemory : Math.max(4 * MiB, Math.floor(budget / 4))
    const workersAsked = env.ONNX_SIDECAR_WORKERS
    const workers = workersAsked !== undefined ? Number(workersAsked) : Math.min(16, Math.max(1, Math.floor(cpus / 2)), Math.floor((budget - 110 * MiB - pool) / (12 * MiB)))
    if (opts.workers !== workers) throw new Error(`${cpus} CPUs, ${budget} bytes: ${opts.workers} workers, expected ${workers}`)
    if (110 * MiB + workers * 12 * MiB + pool > budget) throw new Error(`${workers} workers and ${pool} bytes of request memory do not fit ${budget} bytes`)
    if (own !== undefined) seen.overridden++
    if (cpus >= 130) seen.bigCpu++
    const threadsAsked = ann['onnx-sidecar.io/threads']
    if (threadsAsked !== undefined) {
      seen.ownThreads++
      if (opts.threads !== Number(threadsAsked)) throw new Error(`threads ${String(opts.threads)}, the annotation asked for ${threadsAsked}`)
    } else if (opts.threads !== Math.min(256, Math.max(1, Math.floor((cpus - 1) / workers)))) {
      throw new Error(`${cpus} CPUs, ${workers} workers: ${opts.threads} threads`)
    }
    for (const kind of ['requests', 'limits'] as const) {
      const r = sidecar.resources[kind] ?? {}
      if (r.memory !== undefined && parseQuantity(r.memory).value < MIN_MEMORY.value) throw new Error(`memory ${kind} ${String(r.memory)} is below ${MIN_MEMORY.text}`)
      if (r.cpu !== undefined && parseQuantity(r.cpu).value < MIN_CPU.value) throw new Error(`cpu ${kind} ${String(r.cpu)} is below ${MIN_CPU.text}`)
    }
  }), { numRuns: 10000, seed: Number(process.env.FC_SEED ?? 20261211) })
  t.ok(seen.injected > 200, `many pods injected (${seen.injected})`)
  t.ok(seen.denied > 5000, `many pods denied (${seen.denied})`)
  t.ok(seen.bigCpu > 50, `some injected with 130 CPUs or more (${seen.bigCpu})`)
  t.ok(seen.ownThreads > 50, `some injected with their own thread count (${seen.ownThreads})`)
  t.ok(seen.overridden > 25, `some injected with an override container (${seen.overridden})`)
})
