import t from 'tap'
import { mkdirSync } from 'node:fs'
import { readConfig, ConfigError } from '../../common/config.js'
import { asOption, MAX_MODELS, parallelismFor, planParallelism, memoryBudgetFor, workersThatFit, BASE_MEMORY, WORKER_MEMORY, DERIVED_WORKERS_MAX, parseCpu, parseMemory, parseModelList, parseThreads, MIN_CPU, MIN_MEMORY, THREADS, WORKERS } from '../../common/contract.js'
import { serveOptions } from '../../common/serve-options.js'
import { listModels } from '../../sidecar/models/repository.js'
import { parseAnnotations } from '../../injector/annotations.js'
import { inject } from '../../injector/inject-pod.js'
import { DEFAULT_CONFIG } from '../../injector/injection-config.js'

const serve = (...args: string[]) => readConfig(serveOptions(), args, {})
const annotation = (key: string, value: string) => parseAnnotations({ 'onnx-sidecar.io/model': 'iris', [`onnx-sidecar.io/${key}`]: value }).values

t.test('a model list: the injector admits what serve accepts, and refuses what it refuses', async t => {
  const lists = ['iris', 'ranker:3,ctr', ' ranker:3 , ctr ', 'ResNet50', 'a.b_c-d', 'x'.repeat(128), 'x'.repeat(129), 'iris:0', 'iris:01', 'iris:v1', 'iris:1:2',
    'a/b', '../etc', '.hidden', 'iris,iris', 'ranker:3,ranker:4', 'ranker,ranker:4', 'a,,b', 'a,', 'iris,ctr,iris:2']
  for (const list of lists) {
    let byServe: unknown
    let byInjector: unknown
    try {
      byServe = serve('--model', list).model
    } catch (err) {
      t.type(err, ConfigError)
      t.match((err as Error).message, `flag --model: '${list}' `, 'serve names the flag and the value')
      byServe = 'refused'
    }
    try {
      byInjector = parseAnnotations({ 'onnx-sidecar.io/model': list }).values.model
    } catch (err) {
      t.match((err as Error).message, `annotation onnx-sidecar.io/model: ${JSON.stringify(list)} `)
      byInjector = 'refused'
    }
    t.same(byInjector, byServe, `${list.slice(0, 40)}: ${JSON.stringify(byServe)}`)
  }
  t.same(serve('--model', '').model, [], 'serve: blank is every model in the repository')
  t.throws(() => parseAnnotations({ 'onnx-sidecar.io/model': ' ' }), /names no model/, 'the injector needs at least one')
})

t.test('one model listed twice: refused on both sides, with how to serve several versions', async t => {
  const hint = /lists model 'ranker' twice \('ranker:3' and 'ranker:4'\): a model is served at one pinned version or by its version policy; to serve several versions, list 'ranker' once without a version and put version_policy: \{ specific: \[3, 4\] \} in ranker\/config.yaml$/
  t.throws(() => serve('--model', 'ranker:3,ranker:4'), hint)
  t.throws(() => readConfig(serveOptions(), [], { ONNX_SIDECAR_MODEL: 'ranker:3,ranker:4' }), /^environment variable ONNX_SIDECAR_MODEL: 'ranker:3,ranker:4' lists model 'ranker' twice/)
  t.throws(() => inject({ metadata: { annotations: { 'onnx-sidecar.io/model': 'ranker:3,ranker:4' } }, spec: { containers: [{ name: 'app' }] } }, DEFAULT_CONFIG),
    { code: 'OS_ERR_INJ_INVALID_ANNOTATION', message: /^annotation onnx-sidecar.io\/model: "ranker:3,ranker:4" lists model 'ranker' twice/ })
  t.throws(() => parseModelList('iris,iris'), /lists model 'iris' twice \('iris' and 'iris'\).*version_policy: \{ specific: \[1, 2\] \} in iris\/config.yaml/, 'an example policy when no versions are given')
})

t.test('the repository lists the directories whose names the model lists accept', async t => {
  const repo = t.testdir({})
  for (const name of ['ResNet50', 'a.b_c-d', '.hidden', 'x'.repeat(129)]) mkdirSync(`${repo}/${name}`)
  const listed = await listModels(repo)
  t.same(listed, ['ResNet50', 'a.b_c-d'])
  t.same(parseModelList(listed.join(',')).map(m => m.name), listed)
})

t.test('threads and workers: one range on both sides', async t => {
  t.same([THREADS, WORKERS], [{ min: 1, max: 256 }, { min: 1, max: 64 }])
  t.equal(serve('--threads', '256').threads, 256)
  t.equal(annotation('threads', '256').threads, 256)
  for (const bad of ['0', '257', '1024', '2.5', '-1', 'x']) {
    t.throws(() => serve('--threads', bad), new RegExp(`^flag --threads: '${bad.replace('.', '\\.')}' is not a thread count \\(an integer from 1 to 256\\)$`))
    t.throws(() => annotation('threads', bad), /is not a thread count \(an integer from 1 to 256\)$/)
  }
  t.equal(serve('--workers', '64').workers, 64)
  t.throws(() => serve('--workers', '65'), /^flag --workers: '65' is not a worker count \(an integer from 1 to 64\)$/)
  t.throws(() => readConfig(serveOptions(), [], { ONNX_SIDECAR_THREADS: '300' }), /^environment variable ONNX_SIDECAR_THREADS: '300' is not a thread count/)
})

t.test('parallelism for a CPU count: the sidecar\'s rule, within the ranges', async t => {
  const plan = (cpus: number) => { const p = parallelismFor(cpus); return `${p.workers}x${p.threads}` }
  t.equal(plan(1), '1x1')
  t.equal(plan(3), '1x2')
  t.equal(plan(8), '4x1')
  t.equal(plan(32), '16x1')
  t.equal(plan(34), '16x2', `derived workers stop at ${DERIVED_WORKERS_MAX}; the CPUs go to threads`)
  t.equal(plan(130), '16x8', 'was 64x2: 64 workers idle at about 793 MiB in a 512 MiB budget')
  t.equal(plan(1000), '16x62')
  t.equal(plan(1e18), '16x256', 'threads stop at 256')
  const sidecar = (cpuLimit: string) => {
    const pod = inject({ metadata: { annotations: { 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/cpu-limit': cpuLimit } }, spec: { containers: [{ name: 'app' }] } }, DEFAULT_CONFIG).pod as any
    const args: string[] = pod.spec.initContainers[0].args
    const opts = serve(...args)
    return `${opts.workers}x${opts.threads}`
  }
  t.equal(sidecar('130'), '16x8', 'an injected sidecar with 130 CPUs gets workers its memory holds')
  t.equal(sidecar('1E'), '16x256')
})

t.test('workers fit the memory budget: the fixed base, 12 MiB per worker and the request memory', async t => {
  const MiB = 2 ** 20
  const budget = (text: string, requestMemory?: number) => memoryBudgetFor({ budget: parseMemory(text).value, requestMemory })
  t.same([BASE_MEMORY / MiB, WORKER_MEMORY / MiB], [110, 12], 'the measured costs, rounded up')
  t.equal(workersThatFit(budget('512Mi')), 22, '512 - 110 - 128 (a quarter) leaves 274 MiB: 22 workers')
  const plan = (cpus: number, text: string, explicit = {}) => { const p = planParallelism(cpus, budget(text), explicit); return `${p.workers}x${p.threads}${p.limitedBy === undefined ? '' : ` (${p.limitedBy})`}` }
  t.equal(plan(64, '256Mi'), '6x10 (memory)', '256 - 110 - 64 leaves 82 MiB: 6 workers, not 32')
  t.equal(plan(64, '2Gi'), '16x3 (cap)')
  t.equal(plan(2, '163Mi'), '1x1', 'the least limit that holds one worker beside a quarter for requests')
  t.throws(() => plan(2, '162Mi'), { subject: 'budget', message: /^leaves 40 MiB beside the sidecar's fixed cost \(110 MiB plus 12 MiB for one worker\), less than its request memory of 41 MiB \(a quarter of the limit\); write 163Mi or more$/ })
  t.throws(() => plan(2, '128Mi'), { subject: 'budget', message: /^leaves 6 MiB / })
  t.throws(() => planParallelism(2, budget('512Mi', 400 * MiB)), { subject: 'budget', message: /request memory of 400 MiB; write 522Mi or more/ }, 'an explicit request memory counts in full')
  t.equal(plan(2, '512Mi', { workers: 22, threads: 4 }), '22x4', 'explicit workers that fit are kept')
  t.throws(() => plan(2, '512Mi', { workers: 23 }), { subject: 'workers', message: /^is more workers than fit: .* at most 22 fit$/ })
  t.throws(() => planParallelism(2, memoryBudgetFor({ budget: 512 * MiB, requestMemory: 8 * MiB, bodyLimit: 5 * MiB })), { subject: 'bodyLimit', message: /^is more than half the request memory/ })
})

t.test('cpu and memory have a floor', async t => {
  t.same([MIN_CPU.text, MIN_MEMORY.text], ['50m', '128Mi'])
  t.equal(parseMemory('128Mi').value, 128 * 2 ** 20)
  t.equal(parseMemory('134217728').value, 128 * 2 ** 20, 'in bytes')
  for (const bad of ['1', '1k', '127Mi', '134217727', '100M']) t.throws(() => parseMemory(bad), /^is below 128Mi, the least memory the sidecar runs in/, bad)
  t.equal(parseCpu('50m').value, 0.05)
  t.equal(parseCpu('0.05').value, 0.05)
  for (const bad of ['1m', '49m', '0.01', '10000u']) t.throws(() => parseCpu(bad), /^is below 50m, the least CPU the sidecar runs on/, bad)
  t.throws(() => parseMemory('lots'), /is not a Kubernetes quantity/)
})

t.test('asOption puts the value in front of the message', async t => {
  t.throws(() => asOption(parseThreads)('300'), { message: '\'300\' is not a thread count (an integer from 1 to 256)' })
  t.equal(asOption(parseThreads)('3'), 3)
})

t.test('model lists: at most MAX_MODELS, checked in linear time', async t => {
  const list = (n: number): string => Array.from({ length: n }, (_, i) => `m${i}`).join(',')
  t.equal(parseModelList(list(MAX_MODELS)).length, MAX_MODELS)
  t.throws(() => parseModelList(list(MAX_MODELS + 1)), /one sidecar serves at most 256/)
  t.throws(() => parseModelList(list(60_000)), /lists 60000 models; one sidecar serves at most 256/, 'a 400 KiB list is refused before its entries are checked (6.7 s of blocked event loop before)')
})

t.test('a fleet candidate (--candidate / onnx-sidecar.io/candidate) and its canary percent', async t => {
  const { parseCandidate, parseCanary, fleetCandidate } = await import('../../common/contract.js')
  t.same(parseCandidate('2'), { version: 2 })
  t.same(parseCandidate(' ads:12 '), { model: 'ads', version: 12 })
  for (const bad of ['', 'ads', 'ads:', ':2', '0', 'ads:02', 'a:b:2', '-1', '../x:2']) t.throws(() => parseCandidate(bad), /is not a candidate version \(a version such as 2, or model:version such as ads:2\)/, JSON.stringify(bad))
  t.equal(parseCanary('10'), 10)
  t.equal(parseCanary('50'), 50)
  for (const bad of ['0', '51', '10%', '2.5', '']) t.throws(() => parseCanary(bad), /is not a canary percent \(an integer from 1 to 50\)/, JSON.stringify(bad))

  const names = { model: '--model', candidate: '--candidate', canary: '--canary' }
  t.same(fleetCandidate([{ name: 'ads', version: 1 }], { version: 2 }, 10, names), { model: 'ads', version: 2, canary: 10 }, 'the one model')
  t.same(fleetCandidate([], { model: 'ads', version: 2 }, undefined, names), { model: 'ads', version: 2, canary: undefined }, 'every model served: the named one')
  t.equal(fleetCandidate([{ name: 'ads' }], undefined, undefined, names), undefined)
  t.throws(() => fleetCandidate([{ name: 'ads' }], undefined, 10, names), { message: '--canary needs --candidate: a canary of which version?' })
  t.throws(() => fleetCandidate([{ name: 'ads', version: 2 }], { version: 2 }, undefined, names), { message: "--candidate '2' is the version --model pins as live ('ads:2'); the candidate must be another version" })
  t.throws(() => fleetCandidate([{ name: 'ads' }, { name: 'search' }], { version: 2 }, undefined, names), { message: "--candidate '2' must name its model (model:version): --model lists 2 models" })
  t.throws(() => fleetCandidate([], { version: 2 }, undefined, names), { message: "--candidate '2' must name its model (model:version): --model names no model, so every model is served" })
  t.throws(() => fleetCandidate([{ name: 'ads' }], { model: 'search', version: 2 }, undefined, names), { message: "--candidate 'search:2' names model 'search', which the pod does not serve (--model: ads)" })
})
