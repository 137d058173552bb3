/**
 * SIGTERM and SIGINT from the process's first line (issue 20).
 *
 * A command installs its shutdown only once its module graph has loaded (hundreds of
 * milliseconds: ONNX Runtime, gRPC, OpenTelemetry). A SIGTERM before that used to kill the
 * process with status 143, and as PID 1 in a container (where a signal nothing handles is
 * ignored) it was lost, leaving the pod to wait for the kubelet's SIGKILL. `cli/main.ts`
 * imports this module first (it imports nothing) and calls `installEarlySignals()` as its
 * first statement: from then on the first SIGTERM or SIGINT is recorded, and the
 * long-running commands (`serve`, `webhook`) pick it up through `firstSignal()` when they
 * get there, stopping cleanly with status 0. A later SIGTERM changes nothing (some
 * supervisors signal the process and its group: it must not cut a drain short); a second
 * SIGINT (a second Ctrl-C) exits 130 at once. The one-shot commands call
 * `restoreDefaultSignals()` to be killed by a signal as any command-line tool is.
 */

const SIGNALS = ['SIGTERM', 'SIGINT'] as const
/** Status of a process that a second Ctrl-C ends (128 + SIGINT's number). */
const SECOND_SIGINT_EXIT = 130

let installed = false
let first: NodeJS.Signals | undefined
let resolveFirst: (signal: NodeJS.Signals) => void = () => {}
const firstPromise = new Promise<NodeJS.Signals>(resolve => { resolveFirst = resolve })

function onSignal (signal: NodeJS.Signals): void {
  if (first === undefined) {
    first = signal
    resolveFirst(signal)
  } else if (signal === 'SIGINT') {
    process.exit(SECOND_SIGINT_EXIT)
  }
}

/** Records SIGTERM and SIGINT from now on (idempotent). */
export function installEarlySignals (): void {
  if (installed) return
  installed = true
  for (const s of SIGNALS) process.on(s, onSignal)
}

/** The first SIGTERM or SIGINT received so far; undefined when none was. */
export function receivedSignal (): NodeJS.Signals | undefined {
  return first
}

/** Resolves with the first SIGTERM or SIGINT, whether it came before this call or comes later. */
export function firstSignal (): Promise<NodeJS.Signals> {
  installEarlySignals()
  return firstPromise
}

/**
 * For a command that does not handle signals: they do what they do by default again, and
 * one received meanwhile is raised again (the process ends as if it had come now).
 */
export function restoreDefaultSignals (): void {
  if (!installed) return
  installed = false
  for (const s of SIGNALS) process.off(s, onSignal)
  if (first !== undefined) process.kill(process.pid, first)
}
