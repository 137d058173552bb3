// Test helper: runs one of the shop's services as a process on a free port (PORT=0) and
// resolves with its base URL once it logs {"msg": "... listening", "port": N}.
import { spawnLogged } from './process.mjs'

export async function startService (name, command, args, { cwd, env = {}, timeoutMs = 60_000 } = {}) {
  let listening
  const { child, log, stop } = spawnLogged(command, args, {
    cwd,
    env: { ...process.env, PORT: '0', ...env },
    onRecord: rec => { if (typeof rec.msg === 'string' && rec.msg.endsWith('listening')) listening?.(rec.port) }
  })
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in ${timeoutMs} ms:\n${log.join('')}`)), timeoutMs)
    listening = p => { clearTimeout(timer); resolve(p) }
    child.on('error', err => { clearTimeout(timer); reject(new Error(`${name}: ${err.message}`)) })
    child.on('exit', () => { clearTimeout(timer); reject(new Error(`${name} exited:\n${log.join('')}`)) })
  })
  return { url: `http://127.0.0.1:${port}`, stop, log }
}
