/** Baseline: the naive server's HTTP + JSON path, answering without inference (see baseline-server.ts). */
import { startBaselineServer } from './baseline-server.js'

await startBaselineServer('noinfer', process.argv.slice(2))
