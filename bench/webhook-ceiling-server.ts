/**
 * The ceiling for `npm run bench:webhook`: a bare node:https server that does only what
 * every webhook must (read the body, JSON.parse the review, answer JSON, write one log line
 * per admission) and nothing else. Every review gets `allowed: true` with a fixed patch as
 * long as the real webhook's, so the bytes on the wire match. It shows what HTTPS and JSON
 * alone cost on this machine, with the same load generator, in the same run; the sidecar
 * bench's `noinfer` server plays the same part there.
 *
 * Usage (bench/webhook.ts starts it): node --import tsx bench/webhook-ceiling-server.ts CERT KEY PATCH_CHARS
 * Writes `{"msg":"injector listening","port":N}` to stdout once listening on 127.0.0.1.
 */
import { createServer } from 'node:https'
import { readFileSync, writeSync } from 'node:fs'
import type { AddressInfo } from 'node:net'

const [certFile, keyFile, patchChars] = process.argv.slice(2)
if (certFile === undefined || keyFile === undefined) throw new Error('usage: webhook-ceiling-server CERT KEY PATCH_CHARS')
const patch = 'A'.repeat(Number(patchChars ?? 4000))

const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2', keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  req.on('end', () => {
    const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: string } }
    const text = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":${JSON.stringify(review.request.uid)},"allowed":true,"patchType":"JSONPatch","patch":"${patch}"}}`
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
    writeSync(1, `{"msg":"admission","uid":${JSON.stringify(review.request.uid)}}\n`)
  })
})
server.listen(0, '127.0.0.1', () => {
  writeSync(1, JSON.stringify({ msg: 'injector listening', port: (server.address() as AddressInfo).port }) + '\n')
})
process.on('SIGTERM', () => { process.exit(0) })
