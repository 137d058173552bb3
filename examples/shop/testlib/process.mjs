// Test helper: a child process whose stdout is read as JSON log lines, with its output kept
// for error messages, and a stop() that sends SIGTERM and waits for the exit.
import { spawn } from 'node:child_process'

/** Spawns `command`; `onRecord(record)` sees every stdout line that parses as JSON. */
export function spawnLogged (command, args, { onRecord, ...options } = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
  const log = []
  let exited = null
  child.on('exit', (code, signal) => { exited = { code, signal } })
  child.stderr.on('data', chunk => log.push(String(chunk)))
  let buf = ''
  child.stdout.on('data', chunk => {
    buf += chunk
    let nl
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      log.push(line + '\n')
      let record
      try { record = JSON.parse(line) } catch { continue }
      onRecord?.(record)
    }
  })
  const stop = async () => {
    if (exited !== null) return
    const done = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGTERM')
    await done
  }
  return { child, log, stop }
}
