/**
 * Reconciliation test kit: item keys from numbers, a reference {@link ReconcileSet} on a sorted array
 * (every summary by a plain scan), and a {@link FingerprintIndex} filled on a MemoryOrderedStore.
 */
import { seededRandom } from '../../src/common/random.ts'
import type { KvReconOptions } from '../../src/kv/options.ts'
import { addId, emptySummary, itemKey, type Summary, separator } from '../../src/kv/reconcile/fingerprint.ts'
import { FingerprintIndex, type Part } from '../../src/kv/reconcile/fingerprint-index.ts'
import { indexSet, type ReconcileSet } from '../../src/kv/reconcile/protocol.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'

export const RECON_DEFAULTS: KvReconOptions = {
  reconSplitFactor: 16,
  reconIdListThreshold: 32,
  reconMaxMessageBytes: 1024 * 1024,
  reconMaxRounds: 128,
}

/** A 40-byte item key: HLC (ms, c) and an id derived from `seed` (deterministic, uniform-looking). */
export function keyOf(ms: number, c: number, seed: number): Uint8Array {
  return itemKey({ ms, c }, seededRandom(seed).bytes(32))
}

/** `n` distinct keys with ms from `startMs` on, `stepMs` apart on average (seeded). */
export function keys(n: number, seed: number, startMs = 1_700_000_000_000, stepMs = 10): Uint8Array[] {
  const rnd = seededRandom(seed)
  const out: Uint8Array[] = []
  let ms = startMs
  for (let i = 0; i < n; i++) {
    ms += Math.floor(rnd.next() * 2 * stepMs)
    out.push(itemKey({ ms, c: Math.floor(rnd.next() * 3) }, rnd.bytes(32)))
  }
  return out.sort(Buffer.compare)
}

const cmp = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b)

/** The reference set: a sorted array, every operation a scan. */
export class ArraySet implements ReconcileSet {
  readonly keys: Uint8Array[]
  constructor(keys: Iterable<Uint8Array>) {
    const m = new Map<string, Uint8Array>()
    for (const k of keys) m.set(Buffer.from(k).toString('hex'), k)
    this.keys = [...m.values()].sort(cmp)
  }
  #in(lo: Uint8Array, hi: Uint8Array | undefined): Uint8Array[] {
    return this.keys.filter((k) => cmp(k, lo) >= 0 && (hi === undefined || cmp(k, hi) < 0))
  }
  prefix(x: Uint8Array | undefined): Summary {
    return this.summarize(new Uint8Array(0), x)
  }
  summarize(lo: Uint8Array, hi: Uint8Array | undefined): Summary {
    const s = emptySummary()
    for (const k of this.#in(lo, hi)) addId(s, k)
    return s
  }
  split(lo: Uint8Array, hi: Uint8Array | undefined, parts: number): Part[] {
    const ks = this.#in(lo, hi)
    if (ks.length < 2 || parts < 2) return [{ end: hi, summary: this.summarize(lo, hi) }]
    const out: Part[] = []
    const per = Math.ceil(ks.length / parts)
    for (let i = 0; i < ks.length; i += per) {
      const chunk = ks.slice(i, i + per)
      const next = ks[i + per]
      const s = emptySummary()
      for (const k of chunk) addId(s, k)
      out.push({
        end: next === undefined ? hi : separator(chunk[chunk.length - 1] as Uint8Array, next),
        summary: s,
      })
    }
    return out
  }
  items(lo: Uint8Array, hi: Uint8Array | undefined, limit?: number): Uint8Array[] {
    return this.#in(lo, hi).slice(0, limit)
  }
  has(key: Uint8Array): boolean {
    return this.keys.some((k) => cmp(k, key) === 0)
  }
}

/**
 * A FingerprintIndex on a fresh MemoryOrderedStore holding `items`, and its ReconcileSet. `via`:
 * one `insert` per item (default, in batches of 10,000 per write), or one `load` of the sorted items.
 */
export async function indexedSet(
  items: Iterable<Uint8Array>,
  seed = 1,
  via: 'insert' | 'load' = 'insert',
): Promise<{ store: MemoryOrderedStore; index: FingerprintIndex; set: ReconcileSet }> {
  const store = new MemoryOrderedStore()
  const index = await FingerprintIndex.open(
    store,
    { random: seededRandom(seed) },
    { scope: Uint8Array.of(1) },
  )
  const all = [...items]
  if (via === 'load') {
    all.sort(Buffer.compare)
    await store.write((w) => index.load(w, all))
  } else {
    for (let i = 0; i < all.length; i += 10_000) {
      await store.write((w) => {
        for (const k of all.slice(i, i + 10_000)) index.insert(w, k)
      })
    }
  }
  return { store, index, set: indexSet(index, store) }
}
