/**
 * Ledger snapshots: the state at the current height as a stream of chunks, and their import into an
 * empty store, which recomputes the state root and refuses a snapshot that does not give it. A new node
 * catches up from a snapshot plus the committed batches after its height.
 *
 * A chunk is dag-cbor `{ v: 1, chain, height, timestampMs, root, seq, last, entries }`: the first
 * five are the snapshot's (the same in every chunk), `seq` counts from 0, `last` is true on the final
 * chunk, and `entries` is a flat list `[key, value, key, value, …]` of logical state keys and values
 * (codec.ts) in store order (bucket, then key), strictly increasing across chunks. Chunks are at most
 * `ledger.snapshotChunkBytes`. The root is the importer's to trust or not: pass the root committed for
 * that height (`expectRoot`), not the one the snapshot claims.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { type AbortOptions, throwIfAborted } from '../common/abort.ts'
import { bytesEqual } from '../common/bytes.ts'
import { NodusError } from '../common/errors.ts'
import { type Fail, failWith, readInt, readList, readMap } from '../crypto/index.ts'
import type { OrderedStore } from '../kv/index.ts'
import { physicalKey, STATE_PREFIX } from './apply.ts'
import { CONFIG_KEY, decodeConfig, SUPPLY_KEY, validEntry } from './codec.ts'
import { DEFAULT_LEDGER_OPTIONS } from './options.ts'
import { BucketTree, bucketOf, hashBucket } from './root.ts'
import { hasState, type Ledger, readHead, writeCommit } from './state.ts'

/** The snapshot format version, `v`. */
export const SNAPSHOT_VERSION = 1
/** Room for a chunk's fixed fields, bytes. */
const CHUNK_OVERHEAD = 256

const fail: Fail = failWith('LEDGER_SNAPSHOT_INVALID', 'ledger snapshot')

function stale(message: string): NodusError {
  return new NodusError('LEDGER_SNAPSHOT_STALE', `ledger snapshot: ${message}`)
}

const STATE_END = Uint8Array.of(STATE_PREFIX + 1)

/** What a snapshot is of. */
export interface SnapshotInfo {
  chain: Uint8Array
  height: number
  timestampMs: number
  root: Uint8Array
}

/**
 * The ledger's state at its current height, as chunks (see the module doc). Reads the store between
 * chunks; a batch applied meanwhile makes the snapshot inconsistent, so it throws.
 *
 * @param options.height - the height wanted (default: the current one)
 * @param options.chunkBytes - chunk bound, bytes (default `ledger.snapshotChunkBytes`, 1 MiB)
 * @throws NodusError `LEDGER_SNAPSHOT_STALE` when `height` is not the current height or the ledger
 *   moves during the export; `ABORTED`
 */
export async function* exportSnapshot(
  ledger: Ledger,
  options: AbortOptions & { height?: number; chunkBytes?: number } = {},
): AsyncGenerator<Uint8Array> {
  const store = ledger.store
  const head = readHead(store)
  if (head === undefined) throw stale('the ledger has no head')
  if (options.height !== undefined && options.height !== head.height)
    throw stale(`height ${options.height} asked, the ledger is at ${head.height}`)
  const limit = (options.chunkBytes ?? DEFAULT_LEDGER_OPTIONS.snapshotChunkBytes) - CHUNK_OVERHEAD
  const info = {
    v: SNAPSHOT_VERSION,
    chain: ledger.chain,
    height: head.height,
    timestampMs: head.timestampMs,
    root: head.root,
  }
  let start: Uint8Array = Uint8Array.of(STATE_PREFIX)
  let seq = 0
  for (;;) {
    throwIfAborted(options.signal)
    const entries: Uint8Array[] = []
    let size = 0
    let next: Uint8Array | undefined
    for (const [k, v] of store.range({ start, end: STATE_END })) {
      const bytes = k.byteLength + v.byteLength + 6
      if (entries.length > 0 && size + bytes > limit) {
        next = k.slice()
        break
      }
      entries.push(k.slice(3), v.slice())
      size += bytes
    }
    const now = readHead(store)
    if (now === undefined || now.height !== head.height || ledger.height !== head.height)
      throw stale(`the ledger moved from height ${head.height} during the export`)
    yield dagCbor.encode({ ...info, seq, last: next === undefined, entries })
    if (next === undefined) return
    start = next
    seq++
  }
}

/** Delete every state entry of `store` (after a failed import). */
async function clearState(store: OrderedStore): Promise<void> {
  await store.write((w) => {
    const keys: Uint8Array[] = []
    for (const [k] of w.range({ start: Uint8Array.of(STATE_PREFIX), end: STATE_END })) keys.push(k.slice())
    for (const k of keys) w.del(k)
  })
}

function readChunk(
  bytes: Uint8Array,
  maxBytes: number,
): SnapshotInfo & { seq: number; last: boolean; entries: unknown[] } {
  if (!(bytes instanceof Uint8Array)) throw fail('a chunk is not bytes')
  if (bytes.byteLength > maxBytes) throw fail(`a chunk is over ${maxBytes} bytes`)
  let raw: unknown
  try {
    raw = dagCbor.decode(bytes)
  } catch {
    throw fail('a chunk is not dag-cbor')
  }
  const m = readMap(
    raw,
    'chunk',
    ['v', 'chain', 'height', 'timestampMs', 'root', 'seq', 'last', 'entries'],
    fail,
  )
  if (m.v !== SNAPSHOT_VERSION) throw fail(`v must be ${SNAPSHOT_VERSION}`)
  if (!(m.chain instanceof Uint8Array) || m.chain.byteLength !== 32) throw fail('chain must be 32 bytes')
  if (!(m.root instanceof Uint8Array) || m.root.byteLength !== 32) throw fail('root must be 32 bytes')
  if (typeof m.last !== 'boolean') throw fail('last must be a boolean')
  const entries = readList(m.entries, 'entries', maxBytes, fail)
  if (entries.length % 2 !== 0) throw fail('entries must be key, value pairs')
  return {
    chain: m.chain,
    root: m.root,
    height: readInt(m.height, 'height', 0, Number.MAX_SAFE_INTEGER, fail),
    timestampMs: readInt(m.timestampMs, 'timestampMs', 0, Number.MAX_SAFE_INTEGER, fail),
    seq: readInt(m.seq, 'seq', 0, Number.MAX_SAFE_INTEGER, fail),
    last: m.last,
    entries,
  }
}

/**
 * Import a snapshot into an empty store: every chunk checked (format, sequence, order, each entry
 * decodes and sits in its bucket), the state written, the root recomputed and compared with the
 * snapshot's and `expectRoot`. On any failure the store is left empty. Open a {@link Ledger} on the
 * store afterwards and apply the batches after `height`.
 *
 * @param options.expectRoot - the root committed for the snapshot's height (recommended)
 * @param options.expectHeight - the height wanted
 * @param options.chunkBytes - largest chunk accepted (default `ledger.snapshotChunkBytes`)
 * @param options.rootsKept - as `ledger.rootsKept`
 * @returns what the snapshot is of
 * @throws NodusError `LEDGER_SNAPSHOT_NOT_EMPTY`; `LEDGER_SNAPSHOT_INVALID` (reject);
 *   `LEDGER_SNAPSHOT_ROOT_MISMATCH` (ban) when the state does not give the claimed or expected root;
 *   `ABORTED`
 */
export async function importSnapshot(
  store: OrderedStore,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: AbortOptions & {
    expectRoot?: Uint8Array
    expectHeight?: number
    chunkBytes?: number
    rootsKept?: number
  } = {},
): Promise<SnapshotInfo> {
  if (readHead(store) !== undefined || hasState(store))
    throw new NodusError('LEDGER_SNAPSHOT_NOT_EMPTY', 'ledger snapshot: the store is not empty')
  const maxBytes = options.chunkBytes ?? DEFAULT_LEDGER_OPTIONS.snapshotChunkBytes
  try {
    return await importChunks(store, chunks, maxBytes, options)
  } catch (err) {
    await clearState(store)
    throw err
  }
}

async function importChunks(
  store: OrderedStore,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  maxBytes: number,
  options: AbortOptions & { expectRoot?: Uint8Array; expectHeight?: number; rootsKept?: number },
): Promise<SnapshotInfo> {
  let info: SnapshotInfo | undefined
  let seq = 0
  let done = false
  let previous: Uint8Array | undefined
  for await (const bytes of chunks) {
    throwIfAborted(options.signal)
    if (done) throw fail('a chunk after the last')
    const c = readChunk(bytes, maxBytes)
    if (info === undefined) {
      info = { chain: c.chain, height: c.height, timestampMs: c.timestampMs, root: c.root }
      if (options.expectHeight !== undefined && c.height !== options.expectHeight)
        throw fail(`height ${c.height}, expected ${options.expectHeight}`)
    } else if (
      !bytesEqual(c.chain, info.chain) ||
      !bytesEqual(c.root, info.root) ||
      c.height !== info.height ||
      c.timestampMs !== info.timestampMs
    )
      throw fail('chunks of different snapshots')
    if (c.seq !== seq++) throw fail(`chunk ${c.seq} out of sequence`)
    done = c.last
    const writes: [Uint8Array, Uint8Array][] = []
    for (let i = 0; i < c.entries.length; i += 2) {
      const k = c.entries[i]
      const v = c.entries[i + 1]
      if (!(k instanceof Uint8Array) || !(v instanceof Uint8Array) || !validEntry(k, v))
        throw fail(`entry ${i / 2} of chunk ${c.seq} is not a state entry`)
      const key = physicalKey(bucketOf(k), k)
      if (previous !== undefined && Buffer.compare(previous, key) >= 0) throw fail('entries out of order')
      previous = key
      writes.push([key, v])
    }
    await store.write((w) => {
      for (const [k, v] of writes) w.put(k, v)
    })
  }
  if (info === undefined || !done) throw fail('the snapshot ends before its last chunk')
  const snapshot = info
  return store.write((w) => {
    const config = w.get(physicalKey(bucketOf(CONFIG_KEY), CONFIG_KEY))
    const parsed = config === undefined ? undefined : decodeConfig(config)
    if (parsed === undefined || !bytesEqual(parsed.chain, snapshot.chain))
      throw fail('no config entry for its chain')
    if (w.get(physicalKey(bucketOf(SUPPLY_KEY), SUPPLY_KEY)) === undefined) throw fail('no supply entry')
    const changed = new Map<number, Uint8Array>()
    let bucket = -1
    let entries: [Uint8Array, Uint8Array][] = []
    const close = (): void => {
      if (bucket >= 0) changed.set(bucket, hashBucket(entries))
    }
    for (const [k, v] of w.range({ start: Uint8Array.of(STATE_PREFIX), end: STATE_END })) {
      const b = ((k[1] as number) << 8) | (k[2] as number)
      if (b !== bucket) {
        close()
        bucket = b
        entries = []
      }
      entries.push([k.slice(3), v])
    }
    close()
    const update = new BucketTree().stage(changed)
    for (const [what, root] of [
      ['claims', snapshot.root],
      ['was expected', options.expectRoot],
    ] as const)
      if (root !== undefined && !bytesEqual(update.root, root))
        throw new NodusError(
          'LEDGER_SNAPSHOT_ROOT_MISMATCH',
          `ledger snapshot: the state does not give the root it ${what === 'claims' ? 'claims' : 'was expected to'}`,
          {
            peerAction: 'ban',
            details: { height: snapshot.height },
          },
        )
    writeCommit(
      w,
      update,
      { height: snapshot.height, timestampMs: snapshot.timestampMs, root: update.root },
      options.rootsKept ?? DEFAULT_LEDGER_OPTIONS.rootsKept,
    )
    return snapshot
  })
}
