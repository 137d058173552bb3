/**
 * The logger's stdout when nothing reads it: a FIFO whose reader does not read. Lines beyond
 * the cap are dropped and counted; the rest come out whole once the reader reads, and what
 * came out (all the destination held back, plus the pipe's own buffer) is within the cap.
 * Before the cap, every line waited in memory.
 *
 * Linux/macOS only (mkfifo).
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises'
import { createLogger } from '../../common/logger.js'
import { logDestination } from '../../common/log-destination.js'

const KiB = 1024
const MAX_BYTES = 256 * KiB
const PIPE_BYTES = 64 * KiB // Linux's default pipe buffer
const LINES = 2000 // ~1.2 KiB each: ~2.3 MiB, nine times the cap
const DRAIN_DEADLINE_MS = 10_000

/** Reads the FIFO until `done` says what came out is enough (or a deadline passes). */
async function readUntil (fd: number, done: (text: string) => boolean): Promise<{ text: string, bytes: number }> {
  const chunk = Buffer.alloc(64 * KiB)
  let bytes = 0
  let text = ''
  const deadline = Date.now() + DRAIN_DEADLINE_MS
  while (!done(text) && Date.now() < deadline) {
    let n = 0
    try { n = readSync(fd, chunk) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err }
    bytes += n
    text += chunk.toString('utf8', 0, n)
    if (n === 0) await sleep(20) // sonic-boom retries a refused write after 100 ms
  }
  return { text, bytes }
}

t.test('a stdout that does not drain drops and counts lines beyond the cap', { skip: process.platform === 'win32' ? 'needs mkfifo' : false }, async t => {
  const dir = mkdtempSync(path.join(tmpdir(), 'log-destination-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const fifo = path.join(dir, 'stdout')
  execFileSync('mkfifo', [fifo])
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK) // there, but not reading yet
  t.teardown(() => { closeSync(reader) })
  const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)

  let dropped = 0
  const stream = logDestination({ fd, maxBytes: MAX_BYTES, onDrop: () => { dropped++ } })
  const logger = createLogger({ level: 'info', name: 'test', stream })
  for (let i = 0; i < LINES; i++) {
    logger.info({ line: i, filler: 'f'.repeat(1000) }, 'inference request failed')
    if (i % 50 === 49) await tick() // let writes complete: the pipe fills, then the destination holds lines
  }
  t.ok(dropped > 0, `${dropped} of ${LINES} lines dropped`)

  // Now read: everything held back comes out, line by line.
  const { text, bytes } = await readUntil(reader, text => text.split('\n').length - 1 + dropped >= LINES)
  const lines = text.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { line: number })
  t.equal(lines.length + dropped, LINES, `every line came out whole (${lines.length}) or was counted as dropped (${dropped})`)
  t.ok(bytes <= MAX_BYTES + PIPE_BYTES, `held back ${(bytes / KiB).toFixed(0)} KiB: at most the cap (${MAX_BYTES / KiB} KiB) and the pipe's buffer`)
  t.equal(lines[0]?.line, 0, 'the first lines are kept, later ones dropped')

  // Once stdout drains, lines go through again.
  const before = dropped
  logger.info({ line: LINES }, 'after the stall')
  const after = await readUntil(reader, text => text.includes('\n'))
  t.match(after.text, /"msg":"after the stall"/, 'a new line is written')
  t.equal(dropped, before, 'and not dropped')
  stream.end()
})
