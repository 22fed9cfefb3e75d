/**
 * The items of a database's reconciliation set and their precomputed range summaries, stored on an
 * {@link OrderedStore} so that an op's item is added in the same atomic write as the op itself, and
 * the summary (fingerprint and count) of any range `[lo, hi)` costs O(log n) store reads.
 *
 * Structure: a skip list of aggregates (Pugh, "Skip Lists", CACM 1990), kept as tables of the store.
 * Each item has a level h in 0…{@link MAX_LEVEL}: the number of leading zero nibbles (capped) of
 * SHA-256(salt ‖ id), so P(h ≥ L) = 16^−L. An item of level ≥ L starts a level-L bucket, which holds
 * every item from it up to the next start at that level; a head bucket (start = the empty key) holds
 * the items before the first start. Each level-L bucket stores the summary (count and id sum) of its
 * items. The summary of the items before a bound x is read top-down: at each level, add the buckets
 * that end before x and descend into the one that holds x (about 16 per level), then add the items of
 * the level-1 bucket holding x. A range is the difference of two such prefixes (summaries are additive).
 * Inserting an item updates one bucket per level (one reverse seek and one put), and when the item
 * starts a bucket at level L, splits the bucket it falls in (about 16 reads, with probability 16^−L).
 * Removing does the reverse. The salt is random per store and kept in it, so a writer cannot grind op
 * ids into a degenerate structure.
 *
 * Key layout (prefix bytes 0x40–0x4f of the kv store; `scope` names the database, see {@link dbScope}):
 * - `0x40 ‖ len ‖ scope ‖ item key (40)` → `[level]`: the items;
 * - `0x40+L ‖ len ‖ scope ‖ start` → summary (fingerprint.ts `encodeSummary`), for L = 1…6: the buckets,
 *   `start` the empty key (head) or the item key that starts the bucket;
 * - `0x4f ‖ "salt"` → 32 bytes: the level salt, one per store.
 */
import { hash } from 'node:crypto'
import { NodusError } from '../../common/errors.ts'
import type { Random } from '../../common/random.ts'
import { blake3 } from '../../crypto/index.ts'
import { compareKeys, type OrderedReader, type OrderedStore, type OrderedWriter } from '../store/ordered.ts'
import {
  addEncodedSummary,
  addId,
  addSummary,
  cloneSummary,
  decodeSummary,
  emptySummary,
  encodedWithItem,
  encodeSummary,
  ID_BYTES,
  ITEM_KEY_BYTES,
  type Summary,
  separator,
  subSummary,
} from './fingerprint.ts'

/** Key prefix of the items table. */
export const ITEMS_PREFIX = 0x40
/** Key prefix of the level-L bucket table is `LEVEL_PREFIX_BASE + L`. */
export const LEVEL_PREFIX_BASE = 0x40
/** Highest bucket level: 16^6 ≈ 16.8 M items per top bucket on average. */
export const MAX_LEVEL = 6
/** Key prefix of the index's metadata (the salt). */
export const META_PREFIX = 0x4f
/** Longest scope, bytes. */
export const MAX_SCOPE_BYTES = 64
/** The store key of the level salt. */
const SALT_KEY = Uint8Array.from([META_PREFIX, ...Buffer.from('salt')])
const SALT_BYTES = 32
const EMPTY = new Uint8Array(0)

/**
 * The scope of a database's reconciliation set: the first 16 bytes of BLAKE3(UTF-8 of the db id).
 * @returns `Uint8Array` of 16 bytes
 */
export function dbScope(db: string): Uint8Array {
  return blake3(Buffer.from(db, 'utf8')).slice(0, 16)
}

/** One part of a split range: its exclusive upper bound (undefined: +∞) and its summary. */
export interface Part {
  end: Uint8Array | undefined
  summary: Summary
}

export interface FingerprintIndexDeps {
  /** The level salt: `Uint8Array` of 32 bytes, the same for the life of the store (see {@link FingerprintIndex.open}). */
  salt: Uint8Array
}

export interface FingerprintIndexOptions {
  /** Which set: the database's scope ({@link dbScope}), 1…64 bytes. */
  scope: Uint8Array
}

/**
 * One database's reconciliation set on an ordered store. Every method takes the reader or writer
 * to use, so reads can run inside the caller's write (seeing its earlier puts) or on the store.
 * Bounds `lo`, `hi` are byte strings compared with item keys bytewise; `hi` undefined is +∞.
 */
export class FingerprintIndex {
  readonly #heads: Uint8Array[] = []
  readonly #ends: Uint8Array[] = []
  readonly #levelInput = new Uint8Array(SALT_BYTES + ID_BYTES)

  /**
   * @throws NodusError `INVALID_ARGUMENT` when the salt is not 32 bytes or the scope not 1…64 bytes
   */
  constructor(deps: FingerprintIndexDeps, options: FingerprintIndexOptions) {
    const { scope } = options
    if (deps.salt.length !== SALT_BYTES)
      throw new NodusError('INVALID_ARGUMENT', `the index salt has ${SALT_BYTES} bytes`)
    if (scope.length < 1 || scope.length > MAX_SCOPE_BYTES)
      throw new NodusError('INVALID_ARGUMENT', `a scope has 1 to ${MAX_SCOPE_BYTES} bytes`)
    this.#levelInput.set(deps.salt, 0)
    for (let t = 0; t <= MAX_LEVEL; t++) {
      const head = Uint8Array.from([ITEMS_PREFIX + t, scope.length, ...scope])
      this.#heads.push(head)
      // Above every key of the table: suffixes are at most 40 bytes.
      this.#ends.push(Uint8Array.from([...head, ...new Uint8Array(ITEM_KEY_BYTES + 1).fill(0xff)]))
    }
  }

  /**
   * The index of `scope` on `store`, with the store's salt (made from `deps.random` and written to the
   * store on first use).
   */
  static async open(
    store: OrderedStore,
    deps: { random: Random },
    options: FingerprintIndexOptions,
  ): Promise<FingerprintIndex> {
    let salt = store.get(SALT_KEY)
    if (salt === undefined) {
      const fresh = deps.random.bytes(SALT_BYTES)
      salt = await store.write((w) => {
        const had = w.get(SALT_KEY)
        if (had !== undefined) return had
        w.put(SALT_KEY, fresh)
        return fresh
      })
    }
    return new FingerprintIndex({ salt }, options)
  }

  /** Store key of table `t` (0: items, L: level-L buckets) for `suffix`. */
  #key(t: number, suffix: Uint8Array): Uint8Array {
    const head = this.#heads[t] as Uint8Array
    const out = new Uint8Array(head.length + suffix.length)
    out.set(head, 0)
    out.set(suffix, head.length)
    return out
  }

  #bound(t: number, b: Uint8Array | undefined): Uint8Array {
    return b === undefined ? (this.#ends[t] as Uint8Array) : this.#key(t, b)
  }

  #suffix(t: number, storeKey: Uint8Array): Uint8Array {
    return storeKey.subarray((this.#heads[t] as Uint8Array).length)
  }

  /** The level of an item: leading zero nibbles of SHA-256(salt ‖ id), at most {@link MAX_LEVEL}. */
  #levelOf(key: Uint8Array): number {
    this.#levelInput.set(key.subarray(ITEM_KEY_BYTES - ID_BYTES), SALT_BYTES)
    const h = hash('sha256', this.#levelInput, 'buffer')
    let level = 0
    while (level < MAX_LEVEL) {
      const byte = h[level >> 1] as number
      if ((level & 1) === 0 ? byte >> 4 !== 0 : (byte & 0x0f) !== 0) break
      level++
    }
    return level
  }

  /** The bucket at level `t` (≥ 1) with the greatest start < `key`: [start suffix, encoded summary]. */
  #bucketBefore(r: OrderedReader, t: number, key: Uint8Array): [Uint8Array, Uint8Array] | undefined {
    for (const [k, v] of r.range({
      start: this.#key(t, EMPTY),
      end: this.#key(t, key),
      reverse: true,
      limit: 1,
    }))
      return [this.#suffix(t, k).slice(), v.slice()]
    return undefined
  }

  /** Summary of the units of table `t` (items when 0, else level-t buckets) that start in [lo, hi). */
  #sumUnits(r: OrderedReader, t: number, lo: Uint8Array, hi: Uint8Array | undefined): Summary {
    const acc = emptySummary()
    for (const [k, v] of r.range({ start: this.#key(t, lo), end: this.#bound(t, hi) })) {
      if (t === 0) addId(acc, k)
      else addEncodedSummary(acc, v)
    }
    return acc
  }

  /**
   * Adds the item `key` (40 bytes: HLC ‖ op id) to the set, within the caller's write.
   * @returns false when it was already there (nothing written)
   * @throws NodusError `INVALID_ARGUMENT` when `key` is not 40 bytes
   */
  insert(w: OrderedWriter, key: Uint8Array): boolean {
    checkKey(key)
    const itemKey = this.#key(0, key)
    if (w.get(itemKey) !== undefined) return false
    const level = this.#levelOf(key)
    w.put(itemKey, Uint8Array.of(level))
    for (let t = 1; t <= MAX_LEVEL; t++) {
      const [start, value] = this.#bucketBefore(w, t, key) ?? [EMPTY, undefined]
      if (t > level) {
        w.put(this.#key(t, start), encodedWithItem(value, key, 1))
        continue
      }
      // `key` starts a bucket at this level: it takes the tail of the bucket it fell in.
      let next: Uint8Array | undefined
      for (const [k] of w.range({ start: this.#key(t, key), end: this.#bound(t, undefined), limit: 1 }))
        next = this.#suffix(t, k).slice()
      const right = this.#sumUnits(w, t - 1, key, next)
      const left = subSummary(addId(value === undefined ? emptySummary() : decodeSummary(value), key), right)
      w.put(this.#key(t, key), encodeSummary(right))
      w.put(this.#key(t, start), encodeSummary(left))
    }
    return true
  }

  /**
   * Fills an empty set with `keys` (40 bytes each, strictly ascending) in one pass: the same stored
   * structure as inserting them one by one, with about 1.07 puts per key instead of 7 and no reads.
   * For building the index of an existing op log.
   * @returns the number of keys written
   * @throws NodusError `INVALID_ARGUMENT` when the set is not empty, a key is not 40 bytes, or the keys
   *   are not strictly ascending (nothing is kept when the caller's write then fails)
   */
  load(w: OrderedWriter, keys: Iterable<Uint8Array>): number {
    for (const _ of w.range({ start: this.#key(1, EMPTY), end: this.#bound(1, undefined), limit: 1 }))
      throw new NodusError('INVALID_ARGUMENT', 'load() fills an empty set only')
    const starts: Uint8Array[] = new Array(MAX_LEVEL + 1).fill(EMPTY)
    const sums: Summary[] = Array.from({ length: MAX_LEVEL + 1 }, emptySummary)
    let prev: Uint8Array | undefined
    let n = 0
    for (const key of keys) {
      checkKey(key)
      if (prev !== undefined && compareKeys(prev, key) >= 0)
        throw new NodusError('INVALID_ARGUMENT', 'load() takes keys in strictly ascending order')
      const level = this.#levelOf(key)
      w.put(this.#key(0, key), Uint8Array.of(level))
      for (let t = 1; t <= level; t++) {
        w.put(this.#key(t, starts[t] as Uint8Array), encodeSummary(sums[t] as Summary))
        starts[t] = key
        sums[t] = emptySummary()
      }
      for (let t = 1; t <= MAX_LEVEL; t++) addId(sums[t] as Summary, key)
      prev = key
      n++
    }
    if (n > 0)
      for (let t = 1; t <= MAX_LEVEL; t++)
        w.put(this.#key(t, starts[t] as Uint8Array), encodeSummary(sums[t] as Summary))
    return n
  }

  /**
   * Removes the item `key` from the set (local TTL garbage collection), within the caller's write.
   * @returns false when it was not there
   * @throws NodusError `INVALID_ARGUMENT` when `key` is not 40 bytes
   */
  remove(w: OrderedWriter, key: Uint8Array): boolean {
    checkKey(key)
    const itemKey = this.#key(0, key)
    const stored = w.get(itemKey)
    if (stored === undefined) return false
    const level = stored[0] as number
    w.del(itemKey)
    for (let t = 1; t <= MAX_LEVEL; t++) {
      const prev = this.#bucketBefore(w, t, key)
      if (prev === undefined) throw new Error('fingerprint index: no head bucket for a stored item')
      const [start, value] = prev
      if (t > level) {
        w.put(this.#key(t, start), encodedWithItem(value, key, -1))
        continue
      }
      // `key` started a bucket at this level: the bucket before it takes its items back.
      const own = w.get(this.#key(t, key))
      if (own === undefined) throw new Error('fingerprint index: missing bucket of a stored item')
      w.del(this.#key(t, key))
      w.put(
        this.#key(t, start),
        encodedWithItem(encodeSummary(addEncodedSummary(decodeSummary(value), own)), key, -1),
      )
    }
    return true
  }

  /** Whether the item `key` is in the set. */
  has(r: OrderedReader, key: Uint8Array): boolean {
    return key.length === ITEM_KEY_BYTES && r.get(this.#key(0, key)) !== undefined
  }

  /** Summary of the items < `x` (x undefined: all items). About 16 store entries per level. */
  prefix(r: OrderedReader, x: Uint8Array | undefined): Summary {
    const acc = emptySummary()
    let start: Uint8Array = EMPTY
    for (let t = MAX_LEVEL; t >= 1; t--) {
      let last: Uint8Array | undefined
      let lastStart: Uint8Array | undefined
      // Copies of the entry kept past its iteration: a store may reuse its buffers.
      for (const [k, v] of r.range({ start: this.#key(t, start), end: this.#bound(t, x) })) {
        if (last !== undefined) addEncodedSummary(acc, last)
        last = v.slice()
        lastStart = this.#suffix(t, k).slice()
      }
      if (lastStart === undefined) return acc // no items in the set (no head bucket) or x is the empty key
      start = lastStart
    }
    addSummary(acc, this.#sumUnits(r, 0, start, x))
    return acc
  }

  /** Summary (count and id sum) of the items in [lo, hi). */
  summarize(r: OrderedReader, lo: Uint8Array, hi: Uint8Array | undefined): Summary {
    return subSummary(this.prefix(r, hi), this.prefix(r, lo))
  }

  /** Number of items in [lo, hi). */
  count(r: OrderedReader, lo: Uint8Array, hi: Uint8Array | undefined): number {
    return this.summarize(r, lo, hi).count
  }

  /** The item keys in [lo, hi), in order, at most `limit` (default all): copies, 40 bytes each. */
  items(r: OrderedReader, lo: Uint8Array, hi: Uint8Array | undefined, limit?: number): Uint8Array[] {
    const out: Uint8Array[] = []
    const range = {
      start: this.#key(0, lo),
      end: this.#bound(0, hi),
      ...(limit === undefined ? {} : { limit }),
    }
    for (const [k] of r.range(range)) out.push(this.#suffix(0, k).slice())
    return out
  }

  /** The greatest item key < `x`, or undefined. */
  before(r: OrderedReader, x: Uint8Array): Uint8Array | undefined {
    for (const [k] of r.range({ start: this.#key(0, EMPTY), end: this.#key(0, x), reverse: true, limit: 1 }))
      return this.#suffix(0, k).slice()
    return undefined
  }

  /**
   * Splits [lo, hi) into at most `parts` consecutive parts of roughly equal counts, chosen from the
   * bucket starts of the level whose buckets hold about half a part each (so about 2·parts to
   * 32·parts store entries are read, plus four prefix summaries). Each part's `end` but the last is
   * the shortest separator ({@link separator}) between the items around it; the last part's `end` is
   * `hi`. Every part but possibly the first holds at least one item; the summaries add up to the
   * range's. A range of fewer than 2 items is one part.
   */
  split(r: OrderedReader, lo: Uint8Array, hi: Uint8Array | undefined, parts: number): Part[] {
    const below = this.prefix(r, lo)
    const total = subSummary(this.prefix(r, hi), below)
    if (total.count < 2 || parts < 2) return [{ end: hi, summary: total }]
    const target = total.count / parts
    let t = 0
    while (t < MAX_LEVEL && 16 ** (t + 1) <= target / 2) t++
    for (; t >= 1; t--) {
      const cut = this.#splitAtLevel(r, t, lo, hi, below, total, parts)
      if (cut !== undefined) return cut
    }
    return this.#splitItems(r, lo, hi, total, parts)
  }

  /**
   * Split points among the level-t bucket starts in (lo, hi), or undefined when they give fewer than
   * two parts. `below` summarizes the items below `lo`, `total` those of the range.
   */
  #splitAtLevel(
    r: OrderedReader,
    t: number,
    lo: Uint8Array,
    hi: Uint8Array | undefined,
    below: Summary,
    total: Summary,
    parts: number,
  ): Part[] | undefined {
    const starts: Uint8Array[] = []
    const sums: Uint8Array[] = []
    for (const [k, v] of r.range({ start: this.#key(t, lo), end: this.#bound(t, hi) })) {
      const s = this.#suffix(t, k)
      if (s.length === 0 || compareKeys(s, lo) <= 0) continue // the head, or a start at lo itself
      starts.push(s.slice())
      sums.push(v.slice())
    }
    if (starts.length < parts - 1) return undefined
    // cum = summary of [lo, starts[i]); interior buckets are whole, the last one may reach past hi.
    const cum = subSummary(this.prefix(r, starts[0]), below)
    const out: Part[] = []
    let partStart = emptySummary()
    for (let i = 0; i < starts.length && out.length < parts - 1; i++) {
      const wanted = ((out.length + 1) * total.count) / parts
      if (cum.count >= wanted && cum.count > partStart.count) {
        const start = starts[i] as Uint8Array
        const pred = this.before(r, start) as Uint8Array
        out.push({ end: separator(pred, start), summary: subSummary(cloneSummary(cum), partStart) })
        partStart = cloneSummary(cum)
      }
      addEncodedSummary(cum, sums[i] as Uint8Array)
    }
    if (out.length === 0) return undefined
    out.push({ end: hi, summary: subSummary(cloneSummary(total), partStart) })
    return out
  }

  /** Split points among the items themselves (small ranges). */
  #splitItems(
    r: OrderedReader,
    lo: Uint8Array,
    hi: Uint8Array | undefined,
    total: Summary,
    parts: number,
  ): Part[] {
    const out: Part[] = []
    let part = emptySummary()
    let prev: Uint8Array | undefined
    let seen = 0
    for (const key of this.items(r, lo, hi)) {
      const wanted = ((out.length + 1) * total.count) / parts
      if (prev !== undefined && seen >= wanted && out.length < parts - 1) {
        out.push({ end: separator(prev, key), summary: part })
        part = emptySummary()
      }
      addId(part, key)
      prev = key
      seen++
    }
    out.push({ end: hi, summary: part })
    return out
  }
}

function checkKey(key: Uint8Array): void {
  if (key.length !== ITEM_KEY_BYTES)
    throw new NodusError('INVALID_ARGUMENT', `an item key has ${ITEM_KEY_BYTES} bytes, not ${key.length}`)
}
