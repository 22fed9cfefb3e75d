/**
 * Placement v0: choose the peers for the k+m shards of one segment.
 *
 * A pure function of its inputs (DESIGN.md: the simulator must run the same code). Peers are taken
 * in a rotation that starts at a different offset for every segment, so load spreads evenly; no
 * peer gets two shards of a segment while there are at least `n` candidates. With fewer candidates
 * the rotation wraps, spreading shards as evenly as possible. Scored placement (trust, performance,
 * capacity, diversity) replaces this in a later issue.
 *
 * @param candidates peer identifiers, in a stable order (e.g. sorted PeerId strings)
 * @param n number of shards to place (k + m)
 * @param segmentIndex index of the segment in its file, used as the rotation offset
 * @param salt any integer (e.g. derived from the file hash) so different files start at different peers
 * @returns `n` entries, entry i is the peer for shard i
 * @throws RangeError when `candidates` is empty
 */
export function placeShards(
  candidates: readonly string[],
  n: number,
  segmentIndex: number,
  salt = 0,
): string[] {
  if (candidates.length === 0) throw new RangeError('no candidate peers')
  const c = candidates.length
  const start = (((segmentIndex * n + salt) % c) + c) % c
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(candidates[(start + i) % c] as string)
  return out
}
