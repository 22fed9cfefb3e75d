/**
 * Whether the compiled build (dist/, scripts/build-js.ts) is current: dist/BUILT exists and is at
 * least as new as every file under src/. bin/nodus.js makes the same check in plain JavaScript.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The package root. */
export const ROOT = fileURLToPath(new URL('../', import.meta.url))

function newestMs(dir: string): number {
  let newest = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    newest = Math.max(newest, e.isDirectory() ? newestMs(p) : statSync(p).mtimeMs)
  }
  return newest
}

/** True when dist/ was built after the last change to src/. */
export function distIsFresh(): boolean {
  const built = join(ROOT, 'dist', 'BUILT')
  return existsSync(built) && statSync(built).mtimeMs >= newestMs(join(ROOT, 'src'))
}
