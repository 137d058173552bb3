/**
 * The webhook's defaults, one place for all who need them: its option table
 * (webhook-command.ts, and so `--help` and docs/configuration.md), the in-process server
 * (`build` in webhook-server.ts, also when tests call it without an option) and the tests.
 * 0 where the value is worked out at start-up: `defaultProcesses` and `defaultRequestMemory`
 * below are the only rules, and the option table's `defaultText` says them in words.
 */
import { ANY_HOST } from '../common/http.js'
import { availableCpus } from '../common/cpu.js'
import { memoryBudget } from '../common/memory-limit.js'

const MiB = 1024 * 1024

/** Processes when `--processes` is not given: the CPU limit, capped (each is a whole Node.js process, ~80 MB). */
export const MAX_DEFAULT_PROCESSES = 2

/** The least request memory a process gets by default: room for reviews of a few MiB. */
export const MIN_REQUEST_MEMORY = 16 * MiB

export const WEBHOOK_DEFAULTS = Object.freeze({
  // ---- options (webhook-command.ts WEBHOOK_OPTIONS) ----
  tlsCert: '', // required
  tlsKey: '', // required
  config: '', // built-in injection defaults
  host: ANY_HOST, // every interface, IPv6 and IPv4 (dual-stack); 0.0.0.0 where the node has no IPv6
  port: 8443, // HTTPS: /mutate and health
  metricsPort: 9464, // plain HTTP: /metrics and health
  reloadInterval: 5, // 5 seconds between checks of certificate, key and config files
  requestMemory: 0, // derived: defaultRequestMemory(processes), memory limit / (4 x processes), at least MIN_REQUEST_MEMORY
  maxConnections: 256, // per process: the API servers' connections, kept alive, plus probes; at the cap a new one replaces the oldest idle one
  processes: 0, // derived: defaultProcesses(), the CPU limit, at most MAX_DEFAULT_PROCESSES

  // ---- the server's own limits (no option) ----
  // 4 MiB: the API server refuses request bodies over 3 MiB and etcd stores objects up to
  // 1.5 MiB (protobuf, a little larger as JSON); the review wrapper adds a few KiB
  maxBodyBytes: 4 * MiB,
  handshakeTimeoutMs: 5000, // 5 seconds for a client to finish the TLS handshake: the API server needs milliseconds
  headersTimeoutMs: 10_000, // 10 seconds from a request's first byte to the end of its headers
  requestTimeoutMs: 30_000, // 30 seconds for a whole request: the API server gives up after at most 30 (timeoutSeconds)
  keepAliveTimeoutMs: 65_000, // 65 seconds idle on a kept-alive connection: longer than the API server's idle connection reuse
  connectionsCheckingIntervalMs: 1000, // 1 second: how often Node.js checks the header and request timeouts
  metricsMaxConnections: 64 // per process, on the metrics server: Prometheus and the kubelet's probes
})

export function defaultProcesses (cpus = availableCpus()): number {
  return Math.max(1, Math.min(cpus, MAX_DEFAULT_PROCESSES))
}

/**
 * Request memory per process without `--request-memory`: a quarter of the memory limit
 * (the cgroup's, else 512 MiB: 128 MiB), shared by the processes (each also holds ~80 MB of
 * its own), and at least 16 MiB. A typical review is charged ~10 KiB, a 4 MiB one of long
 * strings ~9 MiB; one charged more than this is always refused: only bodies built to be
 * expensive (4 MiB of `[{},{},…]`: ~173 MiB).
 */
export function defaultRequestMemory (processes: number, budget = memoryBudget(undefined).bytes): number {
  return Math.max(MIN_REQUEST_MEMORY, Math.floor(budget / (4 * processes)))
}
