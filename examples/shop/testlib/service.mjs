// Test helper: runs one of the shop's services as a process on a free port (PORT=0) and
// resolves with its base URL once it logs {"msg": "... listening", "port": N}.
import { spawn } from 'node:child_process'

export async function startService (name, command, args, { cwd, env = {}, timeoutMs = 60_000 } = {}) {
  const child = spawn(command, args, { cwd, env: { ...process.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const log = []
  let exited = null
  child.on('exit', (code, signal) => { exited = { code, signal } })
  child.stderr.on('data', c => log.push(String(c)))
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in ${timeoutMs} ms:\n${log.join('')}`)), timeoutMs)
    let buf = ''
    child.stdout.on('data', chunk => {
      buf += chunk
      let nl
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        log.push(line + '\n')
        try {
          const rec = JSON.parse(line)
          if (typeof rec.msg === 'string' && rec.msg.endsWith('listening')) { clearTimeout(timer); resolve(rec.port) }
        } catch {}
      }
    })
    child.on('error', err => { clearTimeout(timer); reject(new Error(`${name}: ${err.message}`)) })
    child.on('exit', () => { clearTimeout(timer); reject(new Error(`${name} exited:\n${log.join('')}`)) })
  })
  const stop = async () => {
    if (exited !== null) return
    const done = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGTERM')
    await done
  }
  return { url: `http://127.0.0.1:${port}`, stop, log }
}
