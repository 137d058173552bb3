/** Baseline: node:http + JSON + `session.run` on the main thread per request (see baseline-server.ts). */
import { startBaselineServer } from './baseline-server.js'

await startBaselineServer('naive', process.argv.slice(2))
