/**
 * Make package-lock.json installable with `npm ci` through a registry mirror that lacks other
 * platforms' optional binaries (e.g. @biomejs/cli-darwin-arm64 answers 404 here).
 *
 * `npm install` drops such optional dependencies from the lock file, and `npm ci` then refuses the
 * lock file as out of sync. This adds a stub entry (version, optional) for every missing optional
 * dependency; `npm ci` tries it, fails to fetch it, and skips it as an optional dependency.
 * Run after every `npm install`: `node scripts/fix-lockfile.ts`.
 */
import { readFileSync, writeFileSync } from 'node:fs'

interface LockEntry {
  version?: string
  dev?: boolean
  optional?: boolean
  optionalDependencies?: Record<string, string>
}

const path = new URL('../package-lock.json', import.meta.url)
const lock = JSON.parse(readFileSync(path, 'utf8')) as { packages: Record<string, LockEntry> }
let added = 0
for (const [key, meta] of Object.entries(lock.packages)) {
  for (const [dep, range] of Object.entries(meta.optionalDependencies ?? {})) {
    // Resolve like node: nested first, then hoisted.
    const nested = `${key === '' ? '' : `${key}/`}node_modules/${dep}`
    const hoisted = `node_modules/${dep}`
    if (lock.packages[nested] !== undefined || lock.packages[hoisted] !== undefined) continue
    lock.packages[hoisted] = {
      version: range.replace(/^[\^~=]/, ''),
      ...(meta.dev === true ? { dev: true } : {}),
      optional: true,
    }
    added++
  }
}
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`)
console.log(
  `fix-lockfile: added ${added} stub entries for optional dependencies this registry does not serve`,
)
