/**
 * The cli area: the `nodus` command line (main.ts, run by bin/nodus.js) and what it is built from, for
 * programs and tests that drive nodes the way the CLI does. Nothing in src/ imports the CLI; main.ts
 * imports its own modules directly, so that loading the CLI client stays small
 * (test/cli/client-imports.test.ts). See README.md.
 */

export { type ChaosOptions, type ChaosResult, runChaos } from './chaos.ts'
export {
  type ApiTarget,
  apiFromDataDir,
  deleteJson,
  getFile,
  getJson,
  type PutResponse,
  postJson,
  putFile,
} from './client.ts'
export { DEFAULT_DEMO_FILE, type DemoOptions, type DemoResult, runDemo } from './demo.ts'
export { Devnet, type DevnetNode, type DevnetOptions } from './devnet.ts'
export { parseDuration } from './duration.ts'
export { initNode } from './init.ts'
export { simCommand } from './sim.ts'
