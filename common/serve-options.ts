/**
 * The `serve` command's options: flags, environment variables, defaults (docs/configuration.md).
 * In common/ because both sides read it: `serve` parses its command line with it, and the
 * injector checks that the arguments and ONNX_SIDECAR_* variables of an override container
 * parse with it before it admits the pod.
 */
import { commonOptions, parse, type Option } from './config.js'
import { asOption, parseCanary, parseCandidate, parseModelList, parseThreads, parseWorkers, type CandidateRef, type ModelRef } from './contract.js'

/** A port, or `off` (null): no gRPC listener at all. */
function parseGrpcPort (raw: string): number | null {
  if (raw.trim().toLowerCase() === 'off') return null
  return parse.int(0, 65535)(raw)
}

/**
 * serve's defaults, one place for all who need them: the option table below (and so
 * `--help` and docs/configuration.md), the in-process Sidecar (sidecar/sidecar.ts), the
 * metrics server and the tests. 0 (or '') where the value is worked out at start-up;
 * the table's `defaultText` says how.
 */
export const SERVE_DEFAULTS = Object.freeze({
  modelRepository: '/models',
  host: '127.0.0.1', // loopback: only the pod's own containers reach inference
  port: 8500, // REST inference
  grpcPort: 8501, // gRPC inference
  grpcServer: 'http2' as 'grpc-js' | 'http2',
  socketDir: '', // no Unix domain sockets
  metricsHost: '::', // every IPv6 and IPv4 address
  metricsPort: 9464, // /metrics and health
  threads: 0, // derived: (CPU limit - 1) / workers, at least 1
  workers: 0, // derived: CPU limit / 2, at most 16 and what the memory budget holds
  inferenceThread: 'worker' as 'worker' | 'main',
  inlineComputeUs: 300, // 300 µs of compute per full batch
  idleRelease: 10_000, // 10 seconds without a batch: give back the memory a burst took (ms)
  youngGenerationMax: 16 * 1024 * 1024, // 16 MiB: the main thread's V8 new space (V8's own limit is 32 MiB)
  oldGenerationGrowth: 50, // a full collection when the old space is 1.5× what was live after the last one
  memoryLimit: 0, // derived: the cgroup limit, else DEFAULT_MEMORY_BUDGET (512 MiB; common/memory-limit.ts)
  bodyLimit: 0, // derived: requestLimits(budget).bodyLimit, budget / 32, at least 1 MiB
  requestMemory: 0, // derived: requestLimits(budget).requestBytes, budget / 4, at least 4 MiB
  pollInterval: 5000, // 5 seconds between repository rescans (ms)
  warmupRequests: 3000, // requests the sidecar sends itself before it reports ready
  warmupTimeout: 5000, // 5 seconds at most for them (ms)
  shutdownGrace: 20_000, // 20 seconds for in-flight requests on SIGTERM (ms)
  livenessTimeout: 10_000 // 10 seconds without a heartbeat: not live (ms)
})

export function serveOptions () {
  const d = SERVE_DEFAULTS
  return {
    ...commonOptions(),
    modelRepository: { flag: '--model-repository', env: 'ONNX_SIDECAR_MODEL_REPOSITORY', description: 'directory holding <model>/<version>/model.onnx', default: d.modelRepository, parse: parse.string } as Option<string>,
    model: { flag: '--model', env: 'ONNX_SIDECAR_MODEL', description: 'models to serve, name[:version],... (empty: every model in the repository)', default: [], defaultText: 'every model', parse: asOption(parseModelList) } as Option<ModelRef[]>,
    candidate: { flag: '--candidate', env: 'ONNX_SIDECAR_CANDIDATE', description: 'run a rollout of this version (model:version when the sidecar serves several models) against the pinned or policy-served one, decided by the fleet: the pod measures and exports the evidence, never promotes or rolls back itself; wins over config.yaml\'s rollout: block, keeping its thresholds (docs/rollouts.md)', default: undefined, defaultText: 'none', parse: asOption(parseCandidate) } as Option<CandidateRef | undefined>,
    canary: { flag: '--canary', env: 'ONNX_SIDECAR_CANARY', description: 'with --candidate: percent of requests (1-50) the candidate answers, sticky by request id (or the rollout: block\'s sticky_header); without it the candidate runs as a shadow', default: undefined, defaultText: 'none: shadow', parse: asOption(parseCanary) } as Option<number | undefined>,
    host: { flag: '--host', env: 'ONNX_SIDECAR_HOST', description: 'inference address; keep it on loopback', default: d.host, parse: parse.string } as Option<string>,
    port: { flag: '--port', env: 'ONNX_SIDECAR_PORT', description: 'inference port (Open Inference Protocol REST); 0 picks a free one', default: d.port, parse: parse.int(0, 65535) } as Option<number>,
    grpcPort: { flag: '--grpc-port', env: 'ONNX_SIDECAR_GRPC_PORT', description: 'gRPC inference port (Open Inference Protocol gRPC) on --host; 0 picks a free one, "off" serves no gRPC', default: d.grpcPort, parse: parseGrpcPort } as Option<number | null>,
    grpcServer: { flag: '--grpc-server', env: 'ONNX_SIDECAR_GRPC_SERVER', description: 'gRPC server: http2 (the unary calls on node:http2 directly; about 15 % less CPU per call and 5 MiB less RSS) or grpc-js (@grpc/grpc-js)', default: d.grpcServer, parse: parse.oneOf('http2', 'grpc-js') } as Option<'grpc-js' | 'http2'>,
    socketDir: { flag: '--socket-dir', env: 'ONNX_SIDECAR_SOCKET_DIR', description: 'also serve REST on <dir>/http.sock and gRPC on <dir>/grpc.sock (Unix domain sockets, mode 0660); empty: TCP only', default: d.socketDir, defaultText: 'none', parse: parse.string } as Option<string>,
    metricsHost: { flag: '--metrics-host', env: 'ONNX_SIDECAR_METRICS_HOST', description: 'metrics and health address (:: is every IPv6 and IPv4 address; 0.0.0.0 where the host has no IPv6)', default: d.metricsHost, parse: parse.string } as Option<string>,
    metricsPort: { flag: '--metrics-port', env: 'ONNX_SIDECAR_METRICS_PORT', description: 'metrics and health port (/metrics, /v2/health/*); 0 picks a free one', default: d.metricsPort, parse: parse.int(0, 65535) } as Option<number>,
    threads: { flag: '--threads', env: 'ONNX_SIDECAR_THREADS', description: 'ONNX Runtime intra-op threads per worker', default: d.threads, defaultText: '(CPU limit - 1) / workers, at least 1', parse: asOption(parseThreads) } as Option<number>,
    workers: { flag: '--workers', env: 'ONNX_SIDECAR_WORKERS', description: 'inference worker threads (each holds a session per model version)', default: d.workers, defaultText: 'CPU limit / 2, at most 16 and what the memory budget holds (110 MiB base, 12 MiB per worker, beside --request-memory), at least 1', parse: asOption(parseWorkers) } as Option<number>,
    inferenceThread: { flag: '--inference-thread', env: 'ONNX_SIDECAR_INFERENCE_THREAD', description: 'where ONNX Runtime runs: worker (--workers worker threads), or main (the main thread: ~10 MiB less idle RSS and no thread hop per batch, but on 1 CPU a saturated heavy model delays health probes past 10 ms and halves throughput; for light traffic)', default: d.inferenceThread, parse: parse.oneOf('worker', 'main') } as Option<'worker' | 'main'>,
    inlineComputeUs: { flag: '--inline-compute-us', env: 'ONNX_SIDECAR_INLINE_COMPUTE_US', description: 'run a model on the main thread when a full batch computes within this many microseconds (a worker round trip costs more); 0 keeps every model on the workers', default: d.inlineComputeUs, parse: parse.int(0, 100_000) } as Option<number>,
    idleRelease: { flag: '--idle-release', env: 'ONNX_SIDECAR_IDLE_RELEASE_MS', description: 'ms without an inference batch after which the memory a burst took is given back (a young-generation collection in the main thread and each worker lets V8 shrink the new space it grew to: 15 MiB of anonymous memory with the default --young-generation-max, 31 without; a thread whose old space grew more than 4 MiB is first collected in full and compacted; repeated twice more while quiet); V8 shrinks it only after about 5 s of low allocation, so values under 6000 may release nothing; 0 disables', default: d.idleRelease, parse: parse.int(0, 3_600_000) } as Option<number>,
    youngGenerationMax: { flag: '--young-generation-max', env: 'ONNX_SIDECAR_YOUNG_GENERATION_MAX', description: 'the largest the main thread\'s V8 new space grows to under load (V8\'s own limit is 32mb); a size as --memory-limit takes, 0 for V8\'s limit; a semi-space flag in NODE_OPTIONS wins', default: d.youngGenerationMax, defaultText: '16mb', parse: parse.bytes } as Option<number>,
    oldGenerationGrowth: { flag: '--old-generation-growth', env: 'ONNX_SIDECAR_OLD_GENERATION_GROWTH', description: 'percent V8\'s old space may grow past what was live after its last full collection before the next one (V8 picks up to 300 on its own); a burst\'s promoted garbage is collected sooner: 20 MiB less at the small MLP\'s burst peak, CPU within noise; 0 leaves V8\'s heuristics; --heap-growing-percent on the node command line wins', default: d.oldGenerationGrowth, parse: parse.int(0, 1000) } as Option<number>,
    memoryLimit: { flag: '--memory-limit', env: 'ONNX_SIDECAR_MEMORY_LIMIT', description: 'memory budget: bytes, 64mb, or a Kubernetes quantity (512Mi, 0.5Gi, 256M); request sizes, in-flight request memory and the default workers derive from it', default: d.memoryLimit, defaultText: 'the container\'s cgroup memory limit, else 512mb', parse: parse.bytes } as Option<number>,
    bodyLimit: { flag: '--body-limit', env: 'ONNX_SIDECAR_BODY_LIMIT', description: 'largest request body (413 above it); a size as --memory-limit takes', default: d.bodyLimit, defaultText: 'memory budget / 32 (16mb at 512mb), at least 1mb', parse: parse.bytes } as Option<number>,
    requestMemory: { flag: '--request-memory', env: 'ONNX_SIDECAR_REQUEST_MEMORY', description: 'bytes that requests being read, decoded, queued and run may hold at once (503 + Retry-After beyond it)', default: d.requestMemory, defaultText: 'memory budget / 4 (128mb at 512mb)', parse: parse.bytes } as Option<number>,
    warmupRequests: { flag: '--warmup-requests', env: 'ONNX_SIDECAR_WARMUP_REQUESTS', description: 'requests the sidecar sends itself through its REST listener once the models are loaded and before it reports ready (one generated request per model, then the rest to the fastest over 8 connections in turn), so that V8 compiles the request path before the first client: on one CPU a fresh sidecar\'s p99 was about 5 ms for its first 2-3 s of load without it; they are not counted, traced or logged; 0 disables', default: d.warmupRequests, parse: parse.int(0, 100_000) } as Option<number>,
    warmupTimeout: { flag: '--warmup-timeout', env: 'ONNX_SIDECAR_WARMUP_TIMEOUT_MS', description: 'ms the warm-up may take at most; readiness follows when it ends, whether all --warmup-requests were sent or not', default: d.warmupTimeout, parse: parse.int(0, 600_000) } as Option<number>,
    pollInterval: { flag: '--poll-interval', env: 'ONNX_SIDECAR_POLL_INTERVAL_MS', description: 'repository rescan period in ms (file events also trigger a rescan); 0 disables', default: d.pollInterval, parse: parse.int(0, 3_600_000) } as Option<number>,
    shutdownGrace: { flag: '--shutdown-grace', env: 'ONNX_SIDECAR_SHUTDOWN_GRACE_MS', description: 'ms to let in-flight requests finish on SIGTERM', default: d.shutdownGrace, parse: parse.int(0, 600_000) } as Option<number>,
    livenessTimeout: { flag: '--liveness-timeout', env: 'ONNX_SIDECAR_LIVENESS_TIMEOUT_MS', description: 'ms the main thread may go without a heartbeat before /v2/health/live and /ready answer 503 on the metrics port; 0 disables', default: d.livenessTimeout, parse: parse.int(0, 3_600_000) } as Option<number>
  }
}
