// Entry point of the storefront (see app.mjs).
// Environment: PORT (default 8080; 0 picks a free one), RECOMMENDATIONS_URL (default
// http://recommendations), SEARCH_URL (default http://search), ADS_URL (default
// http://ads): the three services; UPSTREAM_TIMEOUT_MS (default 3000); CATALOG (default
// ../catalog.json beside this folder).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createApp } from './app.mjs'

const catalogFile = process.env.CATALOG ?? fileURLToPath(new URL('../catalog.json', import.meta.url))
const server = createApp({
  catalog: JSON.parse(readFileSync(catalogFile, 'utf8')),
  services: {
    recommendations: process.env.RECOMMENDATIONS_URL ?? 'http://recommendations',
    search: process.env.SEARCH_URL ?? 'http://search',
    ads: process.env.ADS_URL ?? 'http://ads'
  },
  timeoutMs: Number(process.env.UPSTREAM_TIMEOUT_MS ?? 3000)
})
server.listen(Number(process.env.PORT ?? 8080), () => {
  console.log(JSON.stringify({ msg: 'storefront listening', port: server.address().port }))
})
for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => server.close(() => process.exit(0)))
