/**
 * Snapshots (src/ledger/snapshot.ts) and persistence: a snapshot plus the later batches gives the
 * root of a full replay (property); a tampered or truncated snapshot is refused and leaves the store
 * empty; an export during application is stale; LMDB keeps state and root across a restart.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { LmdbOrderedStore, MemoryOrderedStore } from '../../src/kv/index.ts'
import { exportSnapshot, importSnapshot, Ledger, tokenId } from '../../src/ledger/index.ts'
import { assertProperty } from '../utils/property.ts'
import { acct, applyUnsigned, genesis, memoryLedger, rawTx, T0 } from './helpers.ts'

const ACCOUNTS = Array.from({ length: 40 }, (_, i) => acct(i + 1))

/** Batches 1..n of a fixed workload: transfers round the accounts, a token and its mints. */
async function makeBatches(n: number): Promise<Uint8Array[][]> {
  const nonces = new Map<Uint8Array, number>()
  const next = (a: Uint8Array): number => {
    const v = nonces.get(a) ?? 0
    nonces.set(a, v + 1)
    return v
  }
  const issuer = ACCOUNTS[0] as Uint8Array
  const out: Uint8Array[][] = []
  for (let h = 1; h <= n; h++) {
    const txs: Uint8Array[] = []
    if (h === 1) txs.push(await rawTx(issuer, next(issuer), { kind: 'token.create', name: 'snap' }))
    for (let i = 0; i < 10; i++) {
      const from = ACCOUNTS[(h * 7 + i) % ACCOUNTS.length] as Uint8Array
      const to = ACCOUNTS[(h * 13 + i * 3 + 1) % ACCOUNTS.length] as Uint8Array
      txs.push(await rawTx(from, next(from), { kind: 'transfer', to, amount: 1 + ((h + i) % 50) }))
    }
    const to = ACCOUNTS[h % 40] as Uint8Array
    txs.push(
      await rawTx(issuer, next(issuer), { kind: 'mint', token: tokenId(issuer, 'snap'), to, amount: h }),
    )
    out.push(txs)
  }
  return out
}

const BATCHES = await makeBatches(12)
const batchAt = async (h: number): Promise<Uint8Array[]> => BATCHES[h - 1] as Uint8Array[]

/** Every chunk of a snapshot of `l`. */
async function chunksOf(l: Ledger, chunkBytes?: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const c of exportSnapshot(l, chunkBytes === undefined ? {} : { chunkBytes })) out.push(c)
  return out
}

const isEmpty = (s: MemoryOrderedStore): boolean => s.size === 0

describe('ledger snapshots', () => {
  it('snapshot at h, then batches h+1.., gives the full replay’s root (property)', async () => {
    const g = genesis(ACCOUNTS)
    const full = await memoryLedger(g)
    const batches = BATCHES
    await assertProperty(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 4096, max: 20_000 }),
        async (at, chunkBytes) => {
          const source = await memoryLedger(g)
          for (let h = 1; h <= at; h++)
            await applyUnsigned(source, T0 + h * 1000, batches[h - 1] as Uint8Array[])
          const store = new MemoryOrderedStore()
          const info = await importSnapshot(store, await chunksOf(source, chunkBytes), {
            expectRoot: source.root,
            chunkBytes,
          })
          assert.equal(info.height, at)
          const resumed = await Ledger.open({ store })
          assert.deepEqual(resumed.root, source.root)
          for (let h = at + 1; h <= 12; h++)
            await applyUnsigned(resumed, T0 + h * 1000, batches[h - 1] as Uint8Array[])
          if (full.height === 0)
            for (let h = 1; h <= 12; h++)
              await applyUnsigned(full, T0 + h * 1000, batches[h - 1] as Uint8Array[])
          assert.deepEqual(resumed.root, full.root)
          assert.equal(resumed.height, 12)
          assert.deepEqual(resumed.supply(), full.supply())
        },
      ),
      { numRuns: 15 },
    )
  })

  it('refuse a tampered, truncated or unexpected snapshot and leave the store empty', async () => {
    const source = await memoryLedger(genesis(ACCOUNTS))
    await applyUnsigned(source, T0 + 1000, await batchAt(1))
    const chunks = await chunksOf(source, 1024)
    assert.ok(chunks.length > 1, 'several chunks')
    const decoded = chunks.map(
      (c) => dagCbor.decode(c) as Record<string, unknown> & { entries: Uint8Array[] },
    )
    // Change one value: the state no longer gives the root.
    const tampered = decoded.map((c) => ({ ...c, entries: [...c.entries] }))
    const first = tampered[0] as { entries: Uint8Array[] }
    const value = (first.entries[1] as Uint8Array).slice()
    value[value.length - 1] = (value[value.length - 1] as number) ^ 1
    first.entries[1] = value
    const cases: [Uint8Array[], string, Uint8Array | undefined][] = [
      [tampered.map((c) => dagCbor.encode(c)), 'LEDGER_SNAPSHOT_', undefined],
      [chunks.slice(0, -1), 'LEDGER_SNAPSHOT_INVALID', undefined],
      [
        [chunks[1] as Uint8Array, chunks[0] as Uint8Array, ...chunks.slice(2)],
        'LEDGER_SNAPSHOT_INVALID',
        undefined,
      ],
      [[...chunks, chunks[0] as Uint8Array], 'LEDGER_SNAPSHOT_INVALID', undefined],
      [chunks, 'LEDGER_SNAPSHOT_ROOT_MISMATCH', new Uint8Array(32)],
    ]
    for (const [input, code, expectRoot] of cases) {
      const store = new MemoryOrderedStore()
      await assert.rejects(
        importSnapshot(
          store,
          input,
          expectRoot === undefined ? { chunkBytes: 1024 } : { expectRoot, chunkBytes: 1024 },
        ),
        (e: unknown) => e instanceof Error && isNodusError(e) && e.code.startsWith(code),
      )
      assert.ok(isEmpty(store), `${code}: the store is left empty`)
    }
    const root = new MemoryOrderedStore()
    await importSnapshot(root, chunks, { chunkBytes: 1024 })
    await assert.rejects(importSnapshot(root, chunks, { chunkBytes: 1024 }), (e: unknown) =>
      isNodusError(e, 'LEDGER_SNAPSHOT_NOT_EMPTY'),
    )
  })

  it('an export is of the current height; a batch applied during it makes it stale', async () => {
    const l = await memoryLedger(genesis(ACCOUNTS))
    await assert.rejects(chunksOf2(l, 5), (e: unknown) => isNodusError(e, 'LEDGER_SNAPSHOT_STALE'))
    const it = exportSnapshot(l, { chunkBytes: 1024 })
    assert.equal((await it.next()).done, false)
    await applyUnsigned(l, T0 + 1000, await batchAt(1))
    await assert.rejects(it.next(), (e: unknown) => isNodusError(e, 'LEDGER_SNAPSHOT_STALE'))
  })

  it('LMDB keeps state, root and roots per height across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nodus-ledger-'))
    try {
      const g = genesis(ACCOUNTS)
      let store = LmdbOrderedStore.open({ path: dir })
      let l = await Ledger.open({ store }, { genesis: g })
      const mem = await memoryLedger(g)
      for (let h = 1; h <= 3; h++) {
        const txs = await batchAt(h)
        await applyUnsigned(l, T0 + h * 1000, txs)
        await applyUnsigned(mem, T0 + h * 1000, txs)
      }
      assert.deepEqual(l.root, mem.root, 'LMDB and memory stores give the same root')
      const root = l.root
      const balance = l.account(ACCOUNTS[5] as Uint8Array)
      await store.close()
      store = LmdbOrderedStore.open({ path: dir })
      l = await Ledger.open({ store }, { genesis: g })
      assert.equal(l.height, 3)
      assert.deepEqual(l.root, root)
      assert.deepEqual(l.account(ACCOUNTS[5] as Uint8Array), balance)
      assert.deepEqual(l.rootAt(2)?.root, mem.rootAt(2)?.root)
      const txs = await batchAt(4)
      assert.deepEqual(
        (await applyUnsigned(l, T0 + 4000, txs)).root,
        (await applyUnsigned(mem, T0 + 4000, txs)).root,
      )
      await store.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

async function chunksOf2(l: Ledger, height: number): Promise<void> {
  for await (const _ of exportSnapshot(l, { height })) {
    // drain
  }
}

it('the fixed workload applies (so the snapshot tests compare real state changes)', async () => {
  const l = await memoryLedger(genesis(ACCOUNTS))
  for (let h = 1; h <= 12; h++) {
    const r = await applyUnsigned(l, T0 + h * 1000, BATCHES[h - 1] as Uint8Array[])
    assert.deepEqual(
      r.outcomes.filter((o) => o.code !== undefined),
      [],
    )
  }
})
