/**
 * Groups of batches in one write (src/ledger/state.ts `applyBatches`): the same outcomes, roots and
 * per-height roots as one batch per write, and nothing changed when the group's write fails.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { MemoryOrderedStore, type OrderedWriter } from '../../src/kv/index.ts'
import { type BatchResult, checkTxs, Ledger, type LedgerBatch } from '../../src/ledger/index.ts'
import { assertProperty } from '../utils/property.ts'
import { acct, applyUnsigned, genesis, memoryLedger, rawTx, T0, trustAll } from './helpers.ts'

const ACCOUNTS = [acct(1), acct(2), acct(3)]

/** A memory store whose next write runs its function, then fails (a disk error at commit). */
class FailingStore extends MemoryOrderedStore {
  failNext = false
  override async write<T>(fn: (w: OrderedWriter) => T): Promise<T> {
    if (!this.failNext) return super.write(fn)
    this.failNext = false
    // Run fn against a copy: its writes are lost, as in an aborted transaction.
    const scratch = new MemoryOrderedStore()
    await scratch.write((w) => {
      for (const [k, v] of this.range({})) w.put(k, v)
    })
    await scratch.write(fn)
    throw new Error('disk full')
  }
}

async function batches(n: number, perBatch: number): Promise<LedgerBatch[]> {
  const out: LedgerBatch[] = []
  const nonces = new Map<number, number>()
  for (let h = 1; h <= n; h++) {
    const txs: Uint8Array[] = []
    for (let i = 0; i < perBatch; i++) {
      // One sender per height: each batch changes its own buckets (its nonce, refused or not).
      const from = (h - 1) % 3
      const nonce = nonces.get(from) ?? 0
      nonces.set(from, nonce + 1)
      txs.push(
        await rawTx(ACCOUNTS[from] as Uint8Array, nonce, {
          kind: 'transfer',
          to: acct(10 + h),
          amount: 1 + ((h * 7 + i) % 50),
        }),
      )
    }
    out.push({ height: h, timestampMs: T0 + h * 100, txs })
  }
  return out
}

describe('ledger batch groups', () => {
  it('a group gives what one write per batch gives: outcomes, roots, every height’s root (property)', async () => {
    await assertProperty(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 4 }),
        async (sizes, perBatch) => {
          const g = genesis(ACCOUNTS)
          const all = await batches(
            sizes.reduce((a, b) => a + b, 0),
            perBatch,
          )
          const one = await memoryLedger(g)
          const grouped = await memoryLedger(g)
          const single: BatchResult[] = []
          for (const b of all) single.push(await applyUnsigned(one, b.timestampMs, [...b.txs]))
          let at = 0
          for (const size of sizes) {
            const group = await Promise.all(
              all
                .slice(at, at + size)
                .map(async (batch) => ({ batch, checked: await checkTxs(batch.txs, trustAll) })),
            )
            const rs = await grouped.applyBatches(group)
            for (const [i, r] of rs.entries()) {
              const s = single[at + i]
              assert.deepEqual(r.root, s?.root)
              assert.deepEqual(r.outcomes, s?.outcomes)
              assert.equal(r.height, s?.height)
            }
            at += size
          }
          assert.deepEqual(grouped.root, one.root)
          assert.equal(grouped.height, one.height)
          for (let h = 0; h <= one.height; h++) assert.deepEqual(grouped.rootAt(h), one.rootAt(h))
        },
      ),
      { numRuns: 15 },
    )
  })

  it('a group whose write fails changes nothing: the next group gives the right roots', async () => {
    const g = genesis(ACCOUNTS)
    const store = new FailingStore()
    const l = await Ledger.open({ store }, { genesis: g })
    const ref = await memoryLedger(g)
    const all = await batches(3, 3)
    const group = await Promise.all(
      all.map(async (batch) => ({ batch, checked: await checkTxs(batch.txs, trustAll) })),
    )
    const root0 = l.root
    store.failNext = true
    await assert.rejects(l.applyBatches(group), /disk full/)
    assert.equal(l.height, 0)
    assert.deepEqual(l.root, root0)
    // Only the first batch now: a tree still holding the failed group's later batches would give
    // another root.
    const rs = [...(await l.applyBatches(group.slice(0, 1))), ...(await l.applyBatches(group.slice(1)))]
    const want = await ref.applyBatches(group)
    assert.deepEqual(
      rs.map((r) => r.root),
      want.map((r) => r.root),
      'the tree was put back: the roots are those of a ledger that never failed',
    )
    assert.equal(l.height, 3)
  })
})
