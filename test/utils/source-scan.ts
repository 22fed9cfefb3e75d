/**
 * For the architecture tests that scan source text (test/architecture/*.test.ts): the files to scan and
 * the findings of a scan over them.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'

/**
 * Source files (`.ts`, `.js`, `.mjs`; not `.d.ts`) under `dir`, as paths relative to it with `/`
 * separators, leaving out the folders in `exempt` (relative to `dir`, each ending in `/`).
 */
export function sourceFiles(dir: string, exempt: readonly string[] = [], root = dir): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    const rel = relative(root, path).split(sep).join('/')
    if (entry.isDirectory()) {
      if (!exempt.includes(`${rel}/`)) out.push(...sourceFiles(path, exempt, root))
    } else if (/\.(ts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(rel)
  }
  return out
}

/**
 * `<label>/<file>:<finding>` for every finding `scan` reports in each of `files` (relative to `dir`);
 * `scan` returns findings such as `12: what`.
 */
export function findings(
  dir: string,
  label: string,
  files: readonly string[],
  scan: (file: string, text: string) => string[],
): string[] {
  return files.flatMap((f) => scan(f, readFileSync(join(dir, f), 'utf8')).map((s) => `${label}/${f}:${s}`))
}
