/**
 * Fault injection for measurements and tests only: drop a fraction of the kv gossip this node
 * receives, as a lossy network would, so that the repair by anti-entropy can be measured
 * (bench/kv-lossy.bench.ts). Off by default (`kv.testGossipDropPerMille` 0); never turn it on in
 * production.
 */
import { mulberry32 } from '../common/prng.ts'
import { blake3 } from '../crypto/index.ts'

const utf8 = new TextEncoder()

/**
 * A drop decision per received gossip message: true for about `perMille` of every 1,000 calls.
 * The draws are mulberry32 seeded with `seed` mixed with `self` (a PeerId string), so the nodes of
 * one run drop independently of each other, and a node with the same PeerId and seed drops the same
 * positions of its message sequence in every run.
 * @param perMille 0 … 1000 (`kv.testGossipDropPerMille`); 0 → undefined (nothing is ever dropped)
 * @param seed any integer (`kv.testGossipDropSeed`)
 * @param self this node's PeerId string
 * @returns a function to call once per received message, or undefined when nothing is dropped
 */
export function gossipDropper(perMille: number, seed: number, self: string): (() => boolean) | undefined {
  if (perMille <= 0) return undefined
  const h = blake3(utf8.encode(`${seed >>> 0} ${self}`))
  const next = mulberry32(new DataView(h.buffer, h.byteOffset, 4).getUint32(0))
  const p = Math.min(1000, perMille) / 1000
  return () => next() < p
}
