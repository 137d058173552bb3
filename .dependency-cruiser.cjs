/**
 * The layers of onnx-sidecar, written once; `npm run lint` checks them with
 * dependency-cruiser (`npm run lint:layers` alone). An import that runs back up a layer,
 * or any cycle, fails CI. docs/design.md draws the same picture.
 *
 *   cli ──▶ sidecar/*.ts (wiring: serve command, options, the Sidecar)
 *             │
 *             ▼
 *           http/ · grpc/      transports: read, decode (through codec/), answer
 *             │
 *             ▼
 *           inference/         the dispatcher (version, rollout route, queue), observer, metadata
 *             │
 *             ▼
 *           rollout/           routing, shadow runs, comparisons, decisions
 *             │
 *             ▼
 *           codec/             wire formats ⇄ tensors, the memory a body costs
 *             │
 *             ▼
 *           shm/               system shared-memory regions (Triton's extension): register, read, write
 *             │
 *             ▼
 *           models/            config, repository, manager, signatures and serving handles
 *             │
 *             ▼
 *           runtime/           worker threads, sessions, batching
 *             │
 *             ▼
 *           core/              errors, datatypes, tensors, metrics, tracing, client-string limits
 *             │
 *             ▼
 *           common/            shared with the injector (config, contract, logging, HTTP)
 *
 * A folder may import itself and anything below it, with two exceptions: the transports
 * reach runtime/ and rollout/ only through inference/, and neither transport imports the
 * other. injector/ sits beside sidecar/ and shares only common/; client/ stands alone.
 * cluster/ holds the commands that talk to a cluster's API server (doctor, rollout): like
 * cli/ it may import anything, and only cli/ imports it.
 */
const layers = [
  // check/ (the CI gate, docs/check.md) wires like sidecar/*.ts: it imports below, nothing imports it.
  ['check', '^sidecar/check/'],
  ['wiring', '^sidecar/[^/]+\\.ts$'],
  ['transport', '^sidecar/(http|grpc)/'],
  ['inference', '^sidecar/inference/'],
  ['rollout', '^sidecar/rollout/'],
  ['codec', '^sidecar/codec/'],
  ['shm', '^sidecar/shm/'],
  ['models', '^sidecar/models/'],
  ['runtime', '^sidecar/runtime/'],
  ['core', '^sidecar/core/']
]

const forbidden = [
  { name: 'no-cycles', severity: 'error', comment: 'files in a cycle are one concern split in two', from: {}, to: { circular: true } },
  { name: 'common-is-the-bottom', severity: 'error', comment: 'common/ serves both commands and imports neither', from: { path: '^common/' }, to: { path: '^(sidecar|injector|cli|client|cluster)/' } },
  { name: 'injector-apart', severity: 'error', comment: 'the injector and the sidecar share only common/', from: { path: '^injector/' }, to: { path: '^sidecar/' } },
  { name: 'sidecar-apart', severity: 'error', comment: 'the injector and the sidecar share only common/', from: { path: '^sidecar/' }, to: { path: '^injector/' } },
  { name: 'client-stands-alone', severity: 'error', comment: 'the client package needs undici and the environment reader only', from: { path: '^client/' }, to: { path: '^(sidecar|injector|cli)/|^common/(?!config\\.ts$)' } },
  { name: 'transports-apart', severity: 'error', comment: 'REST and gRPC share what they need through inference/, codec/ and core/', from: { path: '^sidecar/http/' }, to: { path: '^sidecar/grpc/' } },
  { name: 'transports-apart-grpc', severity: 'error', comment: 'REST and gRPC share what they need through inference/, codec/ and core/', from: { path: '^sidecar/grpc/' }, to: { path: '^sidecar/http/' } },
  { name: 'transports-through-inference', severity: 'error', comment: 'a transport reaches the runtime and rollouts only through inference/', from: { path: '^sidecar/(http|grpc)/' }, to: { path: '^sidecar/(runtime|rollout)/' } },
  { name: 'cluster-is-a-leaf', severity: 'error', comment: 'cluster/ (doctor, rollout) is reached from cli/ only', from: { path: '^(sidecar|injector|common|client)/' }, to: { path: '^cluster/' } },
  { name: 'tests-not-imported', severity: 'error', comment: 'source never imports tests, benchmarks or the e2e', from: { path: '^(sidecar|injector|common|cli|client|cluster)/' }, to: { path: '^(test|bench|e2e)/' } }
]

// Each layer may not import any layer above it.
layers.forEach(([name, path], i) => {
  const above = layers.slice(0, i).map(([, p]) => p)
  if (above.length > 0) forbidden.push({ name: `${name}-not-up`, severity: 'error', comment: `${name} imports only layers below it`, from: { path }, to: { path: above } })
})

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] }
  }
}
