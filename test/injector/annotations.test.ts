import t from 'tap'
import { ANNOTATIONS, parseAnnotations, parseModels, parseQuantity, formatModels, PREFIX, suggestAnnotation, unknownAnnotationWarning } from '../../injector/annotations.js'
import { InjectorError } from '../../injector/errors.js'

t.test('one table holds every annotation of docs/annotations.md', async t => {
  t.same(Object.values(ANNOTATIONS).map(a => a.key.slice(PREFIX.length)).sort(),
    ['canary', 'candidate', 'containers', 'cpu', 'cpu-limit', 'grpc-port', 'inject', 'log-level', 'memory', 'memory-limit', 'metrics-port', 'model', 'model-image', 'native-sidecar', 'port', 'shm-size', 'socket', 'threads', 'volume'])
  for (const a of Object.values(ANNOTATIONS)) {
    t.doesNotThrow(() => (a.parse as (s: string) => unknown)(a.example.replace(/^"|"$/g, '')), `${a.key} example parses`)
  }
})

t.test('model lists', async t => {
  t.same(parseModels('recommender'), [{ name: 'recommender' }])
  t.same(parseModels('ranker:3, ctr'), [{ name: 'ranker', version: 3 }, { name: 'ctr' }])
  t.equal(formatModels(parseModels(' a.b_c-1 ,x:12')), 'a.b_c-1,x:12')
  t.equal(parseModels('a'.repeat(128))[0]?.name.length, 128, 'as long as a name serve accepts')
  t.same(parseModels('ResNet50'), [{ name: 'ResNet50' }], 'upper case, as serve accepts in the repository')
  for (const [bad, why] of [
    ['', /names no model/],
    [' , ', /is not a model list: it has an empty entry/],
    ['a,,b', /is not a model list: it has an empty entry/],
    ['Ranker!', /'Ranker!' is not a model name/],
    ['../etc', /'..\/etc' is not a model name/],
    ['a/b', /not a model name/],
    ['.hidden', /not a model name/],
    ['a'.repeat(129), /not a model name/],
    ['iris:0', /version '0' of 'iris' is not a positive integer/],
    ['iris:v1', /version 'v1'/],
    ['iris:1:2', /expected name\[:version\]/],
    ['iris,iris', /lists model 'iris' twice/],
    ['ranker:3,ranker:4', /^lists model 'ranker' twice \('ranker:3' and 'ranker:4'\): .*list 'ranker' once without a version and put version_policy: \{ specific: \[3, 4\] \} in ranker\/config.yaml$/],
    ['ranker,ctr,ranker:2', /lists model 'ranker' twice \('ranker' and 'ranker:2'\)/]
  ] as const) {
    t.throws(() => parseModels(bad), why, JSON.stringify(bad))
  }
})

t.test('quantities', async t => {
  t.equal(parseQuantity('250m').value, 0.25)
  t.equal(parseQuantity('2').value, 2)
  t.equal(parseQuantity('1.5').value, 1.5)
  t.equal(parseQuantity('256Mi').value, 256 * 2 ** 20)
  t.equal(parseQuantity('1G').value, 1e9)
  t.equal(parseQuantity('1e3').value, 1000)
  t.equal(parseQuantity('2E3').value, 2000)
  t.equal(parseQuantity('1E').value, 1e18, 'E alone is exa, not an exponent')
  t.equal(parseQuantity(' 1Gi ').text, '1Gi')
  for (const bad of ['', 'lots', '-1', '1 Gi', '1gi', '1.2.3', 'Mi']) t.throws(() => parseQuantity(bad), /not a Kubernetes quantity/, bad)
  t.throws(() => parseQuantity('0'), /greater than zero/)
})

t.test('parseAnnotations: values, unknown keys, and messages that name annotation and value', async t => {
  const parsed = parseAnnotations({
    'onnx-sidecar.io/model': 'iris',
    'onnx-sidecar.io/port': '8600',
    'onnx-sidecar.io/native-sidecar': 'FALSE',
    'onnx-sidecar.io/threads': 4,
    'onnx-sidecar.io/grpc-port': 8601,
    'onnx-sidecar.io/socket': 'true',
    'onnx-sidecar.io/modle': 'typo',
    'onnx-sidecar.io/status': '{}',
    'other.io/x': 'y'
  })
  t.same(parsed.values, { model: [{ name: 'iris' }], port: 8600, nativeSidecar: false, threads: 4, grpcPort: 8601, socket: true })
  t.same(parsed.unknown, ['onnx-sidecar.io/modle'])

  const cases: Array<[string, string, RegExp]> = [
    ['port', '0', /^annotation onnx-sidecar.io\/port: "0" is not a port number \(1-65535\)$/],
    ['port', '65536', /"65536" is not a port number/],
    ['port', 'http', /"http" is not a port number/],
    ['metrics-port', '-1', /metrics-port: "-1"/],
    ['grpc-port', '0', /^annotation onnx-sidecar.io\/grpc-port: "0" is not a port number \(1-65535\)$/],
    ['grpc-port', '8501.0', /grpc-port: "8501.0" is not a port number/],
    ['socket', 'yes', /^annotation onnx-sidecar.io\/socket: "yes" is not "true" or "false"$/],
    ['socket', '1', /socket: "1"/],
    ['threads', '0', /threads: "0" is not a thread count/],
    ['threads', '2.5', /threads: "2.5"/],
    ['threads', '257', /^annotation onnx-sidecar.io\/threads: "257" is not a thread count \(an integer from 1 to 256\)$/],
    ['memory', '1', /^annotation onnx-sidecar.io\/memory: "1" is below 128Mi, the least memory the sidecar runs in \(a plain number is bytes: write 512Mi or 1Gi\)$/],
    ['memory-limit', '127Mi', /memory-limit: "127Mi" is below 128Mi/],
    ['cpu', '10m', /^annotation onnx-sidecar.io\/cpu: "10m" is below 50m, the least CPU the sidecar runs on/],
    ['cpu-limit', '0.049', /cpu-limit: "0.049" is below 50m/],
    ['inject', 'no', /inject: "no" is not "true" or "false"/],
    ['native-sidecar', 'yes', /native-sidecar: "yes"/],
    ['volume', 'Models', /volume: "Models" is not a volume name/],
    ['log-level', 'loud', /log-level: "loud" is not a log level/],
    ['cpu', '1 core', /cpu: "1 core" is not a Kubernetes quantity/],
    ['memory-limit', '1gb', /memory-limit: "1gb"/],
    ['model-image', '', /^annotation onnx-sidecar.io\/model-image: "" is not an image reference: it is empty/],
    ['model-image', 'Registry.Example/Models:v1', /^annotation onnx-sidecar.io\/model-image: "Registry.Example\/Models:v1" is not an image reference: the repository name 'Models' must be lower case$/],
    ['model-image', 'models@sha256:abc', /model-image: "models@sha256:abc" is not an image reference: 'sha256:abc' after @ is not a digest/],
    ['containers', 'app,', /^annotation onnx-sidecar.io\/containers: "app," has an empty entry/],
    ['containers', 'App', /containers: "App" names "App", which is not a container name/],
    ['containers', 'app,worker,app', /containers: "app,worker,app" names container app twice/]
  ]
  for (const [key, value, message] of cases) {
    t.throws(() => parseAnnotations({ 'onnx-sidecar.io/model': 'iris', [`onnx-sidecar.io/${key}`]: value }), message, `${key}=${value}`)
  }
  t.match(parseAnnotations({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/model-image': '127.0.0.1:5000/models/iris:v1' }).values,
    { modelImage: { text: '127.0.0.1:5000/models/iris:v1', domain: '127.0.0.1:5000', path: 'models/iris', tag: 'v1' } }, 'a model image parses into its parts')
  t.match(parseAnnotations({ 'onnx-sidecar.io/model': 'iris', 'onnx-sidecar.io/threads': '256', 'onnx-sidecar.io/memory': '128Mi', 'onnx-sidecar.io/cpu': '50m' }).values,
    { threads: 256, memory: { value: 128 * 2 ** 20 }, cpu: { value: 0.05 } }, 'the edges of the ranges are admitted')
  const err = t.throws(() => parseAnnotations({ 'onnx-sidecar.io/model': 'A!', 'onnx-sidecar.io/port': 'x', 'onnx-sidecar.io/cpu': { a: 1 } })) as unknown as InjectorError
  t.equal(err.code, 'OS_ERR_INJ_INVALID_ANNOTATION')
  t.match(err.message, /model: "A!".*; annotation onnx-sidecar.io\/port: "x".*; annotation onnx-sidecar.io\/cpu: "\{\\"a\\":1\}" is not a string/, 'every problem in one message')
})

t.test('unknown annotations: the known key a typo is close to (at most 2 edits), else none', async t => {
  t.equal(suggestAnnotation('onnx-sidecar.io/memroy-limit'), 'onnx-sidecar.io/memory-limit')
  t.equal(suggestAnnotation('onnx-sidecar.io/modle'), 'onnx-sidecar.io/model')
  t.equal(suggestAnnotation('onnx-sidecar.io/Container'), 'onnx-sidecar.io/containers', 'case and one letter')
  t.equal(suggestAnnotation('onnx-sidecar.io/cpus'), 'onnx-sidecar.io/cpu', 'the closest of several')
  t.equal(suggestAnnotation('onnx-sidecar.io/replicas'), undefined, 'nothing close')
  t.equal(suggestAnnotation(`onnx-sidecar.io/${'x'.repeat(100_000)}`), undefined, 'a long key is no typo (and costs nothing)')
  t.equal(unknownAnnotationWarning('onnx-sidecar.io/memroy-limit'), 'unknown annotation onnx-sidecar.io/memroy-limit is ignored (did you mean onnx-sidecar.io/memory-limit?)')
  t.equal(unknownAnnotationWarning('onnx-sidecar.io/replicas'), 'unknown annotation onnx-sidecar.io/replicas is ignored')
  t.ok(Buffer.byteLength(unknownAnnotationWarning(`onnx-sidecar.io/${'x'.repeat(100_000)}`)) < 1024, 'a huge key is cut')
})

t.test('shm-size: a memory quantity of at least 1Mi', async t => {
  const parse = ANNOTATIONS.shmSize.parse
  t.same(parse('64Mi'), { text: '64Mi', value: 64 * 2 ** 20 })
  t.same(parse('1Mi').value, 2 ** 20)
  t.throws(() => parse('512Ki'), { message: /below 1Mi/ })
  t.throws(() => parse('1000'), { message: /below 1Mi.*write 64Mi/ })
  t.throws(() => parse('lots'), { message: /not a Kubernetes quantity/ })
})
