// Entry point of the recommendations service (see app.mjs).
// Environment: PORT (default 8080; 0 picks a free one), MODEL (default recommendations),
// CATALOG (default ../catalog.json beside this folder), ONNX_SIDECAR_URL and
// ONNX_SIDECAR_SOCKET (set by the injector; read by onnx-sidecar/client).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { SidecarClient } from 'onnx-sidecar/client'
import { createApp } from './app.mjs'

const catalogFile = process.env.CATALOG ?? fileURLToPath(new URL('../catalog.json', import.meta.url))
const catalog = JSON.parse(readFileSync(catalogFile, 'utf8'))
const model = process.env.MODEL ?? 'recommendations'
const sidecar = new SidecarClient()
const { server, transport } = createApp({ sidecar, catalog, model })

server.listen(Number(process.env.PORT ?? 8080), () => {
  console.log(JSON.stringify({ msg: 'recommendations listening', port: server.address().port, sidecar: transport, model }))
})
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.once(sig, () => { server.close(); sidecar.close().finally(() => process.exit(0)) })
}
