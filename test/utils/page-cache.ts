import { spawnSync } from 'node:child_process'

/**
 * Pages of `path` in the page cache (util-linux `fincore`), or undefined when fincore is not installed:
 * tells a direct (O_DIRECT) write or read, which leaves none, from a buffered one.
 */
export function residentPages(path: string): number | undefined {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'PAGES', path], { encoding: 'utf8' })
  if (r.error !== undefined || r.status !== 0) return undefined
  return Number(r.stdout.trim())
}
