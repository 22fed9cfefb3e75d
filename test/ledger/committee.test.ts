/**
 * The committee as ledger state (src/ledger/committee.ts, epoch.ts): only current members propose and
 * vote; a quorum (n − f distinct members) of votes for one hash decides the next epoch at that height;
 * one decision per epoch; a minority never decides; the committee is identical on every node for the
 * same commit sequence (property, across batch groupings and a snapshot).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { MemoryOrderedStore } from '../../src/kv/index.ts'
import {
  type CommitteeMember,
  checkTxs,
  decodeTx,
  exportSnapshot,
  importSnapshot,
  Ledger,
  type LedgerGenesis,
  MAX_COMMITTEE_TX_BYTES,
  MAX_TX_BYTES,
  proposalHash,
  quorumOf,
  type TxAction,
} from '../../src/ledger/index.ts'
import { assertProperty } from '../utils/property.ts'
import { acct, applyUnsigned, CHAIN, memoryLedger, rawTx, T0, trustAll } from './helpers.ts'

const OLD = Array.from({ length: 7 }, (_, i) => acct(0x10 + i))
const NEW = Array.from({ length: 3 }, (_, i) => acct(0x40 + i))
const OUTSIDER = acct(0x77)
const SEED = new Uint8Array(32).fill(9)

const members = (keys: readonly Uint8Array[]): CommitteeMember[] => keys.map((ed25519) => ({ ed25519 }))

function committeeGenesis(keys: readonly Uint8Array[] = OLD): LedgerGenesis {
  return {
    chain: CHAIN,
    timestampMs: T0,
    accounts: [],
    committee: { epoch: 0, leaderSeed: SEED, signatureMode: 'ed25519', members: members(keys) },
  }
}

/** 4 old members kept, 3 removed, 3 added. */
const NEXT = members([...OLD.slice(0, 4), ...NEW])
const NEXT_HASH = proposalHash({ epoch: 1, members: NEXT })

class Nonces {
  readonly #n = new Map<string, number>()
  next(a: Uint8Array): number {
    const k = Buffer.from(a).toString('hex')
    const v = this.#n.get(k) ?? 0
    this.#n.set(k, v + 1)
    return v
  }
}

const propose = (epoch: number, m: CommitteeMember[], params?: Record<string, number>): TxAction =>
  params === undefined
    ? { kind: 'committee.propose', epoch, members: m }
    : { kind: 'committee.propose', epoch, members: m, params }
const vote = (epoch: number, proposal: Uint8Array): TxAction => ({ kind: 'committee.vote', epoch, proposal })

describe('ledger committee', () => {
  it('starts from the genesis committee', async () => {
    const l = await memoryLedger(committeeGenesis())
    const c = l.committee()
    assert.ok(c !== undefined)
    assert.equal(c.epoch, 0)
    assert.equal(c.base, 0)
    assert.equal(c.startMs, T0)
    assert.deepEqual(c.leaderSeed, SEED)
    assert.deepEqual(
      c.members.map((m) => m.ed25519),
      OLD,
    )
    assert.deepEqual(
      c.votes,
      OLD.map(() => null),
    )
  })

  it('refuses propose and vote from a non-member, and in a ledger without a committee', async () => {
    const l = await memoryLedger(committeeGenesis())
    const n = new Nonces()
    const r = await applyUnsigned(l, T0 + 1000, [
      await rawTx(OUTSIDER, n.next(OUTSIDER), propose(1, NEXT)),
      await rawTx(NEW[0] as Uint8Array, 0, propose(1, NEXT)),
      await rawTx(OLD[0] as Uint8Array, n.next(OLD[0] as Uint8Array), propose(1, NEXT)),
      await rawTx(OUTSIDER, n.next(OUTSIDER), vote(1, NEXT_HASH)),
    ])
    assert.deepEqual(
      r.outcomes.map((o) => o.code),
      ['LEDGER_TX_NOT_MEMBER', 'LEDGER_TX_NOT_MEMBER', undefined, 'LEDGER_TX_NOT_MEMBER'],
    )
    assert.deepEqual(
      l.committee()?.votes,
      OLD.map(() => null),
    )
    const bare = await memoryLedger({ chain: CHAIN, timestampMs: T0, accounts: [] })
    const r2 = await applyUnsigned(bare, T0 + 1000, [await rawTx(OLD[0] as Uint8Array, 0, propose(1, NEXT))])
    assert.equal(r2.outcomes[0]?.code, 'LEDGER_TX_NOT_MEMBER')
    assert.equal(bare.committee(), undefined)
  })

  it('a quorum of votes decides the next epoch at that height; one decision per epoch', async () => {
    const l = await memoryLedger(committeeGenesis())
    const n = new Nonces()
    const tx = (from: Uint8Array, a: TxAction) => rawTx(from, n.next(from), a)
    assert.equal(quorumOf(7), 5)
    const other = members([...OLD.slice(0, 3), ...NEW])
    const otherHash = proposalHash({ epoch: 1, members: other })
    let r = await applyUnsigned(l, T0 + 1000, [
      await tx(OLD[0] as Uint8Array, propose(1, NEXT, { roundTimeoutMs: 700 })),
      await tx(OLD[1] as Uint8Array, propose(1, other)),
      await tx(OLD[2] as Uint8Array, propose(2, NEXT)),
      await tx(OLD[2] as Uint8Array, vote(1, new Uint8Array(32).fill(3))),
    ])
    assert.deepEqual(
      r.outcomes.map((o) => o.code),
      [undefined, undefined, 'LEDGER_TX_WRONG_EPOCH', 'LEDGER_TX_PROPOSAL_UNKNOWN'],
    )
    const hash = proposalHash({ epoch: 1, members: NEXT, params: { roundTimeoutMs: 700 } })
    assert.deepEqual(l.proposal(hash)?.members, NEXT)
    assert.equal(l.committee()?.proposals.length, 2)
    // Four votes (< 5), one of them moved from the other proposal: no decision.
    r = await applyUnsigned(l, T0 + 2000, [
      await tx(OLD[0] as Uint8Array, vote(1, hash)),
      await tx(OLD[1] as Uint8Array, vote(1, otherHash)),
      await tx(OLD[2] as Uint8Array, vote(1, hash)),
      await tx(OLD[3] as Uint8Array, vote(1, hash)),
      await tx(OLD[1] as Uint8Array, vote(1, hash)),
      await tx(OLD[4] as Uint8Array, vote(1, otherHash)),
    ])
    assert.ok(r.outcomes.every((o) => o.code === undefined))
    assert.equal(r.decided, undefined)
    assert.equal(l.committee()?.epoch, 0)
    // The fifth distinct member decides; what follows in the batch is refused.
    r = await applyUnsigned(l, T0 + 3000, [
      await tx(OLD[0] as Uint8Array, vote(1, hash)), // a repeated vote counts once
      await tx(OLD[5] as Uint8Array, vote(1, hash)),
      await tx(OLD[6] as Uint8Array, vote(1, otherHash)),
      await tx(NEW[0] as Uint8Array, propose(2, members(OLD))),
    ])
    assert.deepEqual(
      r.outcomes.map((o) => o.code),
      [undefined, undefined, 'LEDGER_TX_WRONG_EPOCH', 'LEDGER_TX_WRONG_EPOCH'],
    )
    assert.equal(r.decided?.epoch, 1)
    const c = l.committee()
    assert.ok(c !== undefined)
    assert.equal(c.epoch, 1)
    assert.equal(c.base, 3)
    assert.equal(c.startMs, T0 + 3000)
    assert.deepEqual(c.members, NEXT)
    assert.deepEqual(c.params, { roundTimeoutMs: 700 })
    assert.deepEqual(c.proposals, [])
    assert.notDeepEqual(c.leaderSeed, SEED)
    assert.equal(l.proposal(hash), undefined, 'pending proposals are dropped')
    assert.equal(l.proposal(otherHash), undefined)
    // Epoch 1: old votes name a decided epoch; removed members are no longer members.
    r = await applyUnsigned(l, T0 + 4000, [
      await tx(OLD[6] as Uint8Array, vote(1, otherHash)),
      await tx(OLD[0] as Uint8Array, vote(1, otherHash)),
      await tx(NEW[1] as Uint8Array, propose(2, members(OLD))),
      await tx(NEW[1] as Uint8Array, propose(3, members(OLD))),
    ])
    assert.deepEqual(
      r.outcomes.map((o) => o.code),
      ['LEDGER_TX_NOT_MEMBER', 'LEDGER_TX_EPOCH_DECIDED', undefined, 'LEDGER_TX_WRONG_EPOCH'],
    )
  })

  it('a minority (≤ f members) never decides, whatever it sends', async () => {
    const l = await memoryLedger(committeeGenesis())
    const n = new Nonces()
    const f = 2
    const txs: Uint8Array[] = [
      await rawTx(OLD[0] as Uint8Array, n.next(OLD[0] as Uint8Array), propose(1, NEXT)),
    ]
    for (let round = 0; round < 5; round++)
      for (const m of OLD.slice(0, f)) txs.push(await rawTx(m, n.next(m), vote(1, NEXT_HASH)))
    const r = await applyUnsigned(l, T0 + 1000, txs)
    assert.ok(r.outcomes.every((o) => o.code === undefined))
    assert.equal(r.decided, undefined)
    assert.equal(l.committee()?.epoch, 0)
    assert.equal(l.committee()?.votes.filter((v) => v !== null).length, f)
  })

  it('a new proposal replaces the member’s previous one; a hybrid mismatch is refused', async () => {
    const l = await memoryLedger(committeeGenesis())
    const n = new Nonces()
    const a = OLD[0] as Uint8Array
    const first = members(OLD.slice(0, 4))
    const r = await applyUnsigned(l, T0 + 1000, [
      await rawTx(a, n.next(a), propose(1, first)),
      await rawTx(a, n.next(a), propose(1, NEXT)),
      await rawTx(a, n.next(a), propose(1, [{ ed25519: acct(1), mldsa65: new Uint8Array(1952) }])),
    ])
    assert.deepEqual(
      r.outcomes.map((o) => o.code),
      [undefined, undefined, 'LEDGER_TX_COMMITTEE_INVALID'],
    )
    assert.equal(l.proposal(proposalHash({ epoch: 1, members: first })), undefined)
    assert.deepEqual(l.proposal(NEXT_HASH)?.members, NEXT)
    assert.equal(l.committee()?.proposals.length, 1)
  })

  it('committee.propose may be up to 64 KiB; every other kind stays at 1,024 bytes', async () => {
    const big = Array.from({ length: 256 }, (_, i) => ({
      ed25519: acct(i),
      name: `validator-${i}-${'x'.repeat(40)}`,
    }))
    big.forEach((m, i) => {
      m.ed25519 = new Uint8Array(32)
      m.ed25519[0] = i
      m.ed25519[1] = 1
    })
    const bytes = await rawTx(OLD[0] as Uint8Array, 0, propose(1, big))
    assert.ok(bytes.byteLength > MAX_TX_BYTES && bytes.byteLength <= MAX_COMMITTEE_TX_BYTES)
    assert.equal(decodeTx(bytes).body.kind, 'committee.propose')
    const checked = await checkTxs([bytes], trustAll)
    assert.ok(checked[0]?.tx !== undefined)
    await assert.rejects(rawTx(OLD[0] as Uint8Array, 0, propose(1, [...big, { ed25519: acct(1) }])), {
      code: 'LEDGER_TX_INVALID',
    })
  })

  it('the committee is identical on every node for the same commit sequence (property)', async () => {
    const g = committeeGenesis()
    let decided = 0
    const candidates = [NEXT, members(OLD.slice(0, 4)), members([...OLD.slice(1), ...NEW])]
    await assertProperty(
      fc.asyncProperty(
        fc.array(
          fc.record({
            who: fc.nat(13).map((x) => (x < 10 ? x % 7 : x - 3)), // mostly old members
            propose: fc.nat(3).map((x) => x === 0),
            which: fc.constantFrom(0, 0, 0, 1, 2),
            ahead: fc.integer({ min: 0, max: 2 }),
          }),
          { minLength: 20, maxLength: 60, size: 'max' },
        ),
        fc.integer({ min: 1, max: 6 }),
        async (ops, per) => {
          // One commit sequence: batches of `per` transactions.
          const n = new Nonces()
          const all = [...OLD, ...NEW, OUTSIDER]
          const batches: Uint8Array[][] = []
          for (const [i, op] of ops.entries()) {
            const from = all[op.who] as Uint8Array
            const m = candidates[op.which] as CommitteeMember[]
            const epoch = op.ahead === 2 ? 2 : 1
            const action = op.propose ? propose(epoch, m) : vote(epoch, proposalHash({ epoch, members: m }))
            if (i % per === 0) batches.push([])
            batches[batches.length - 1]?.push(await rawTx(from, n.next(from), action))
          }
          // Node A applies batch by batch; node B in one group; node C from a snapshot half-way.
          const a = await memoryLedger(g)
          const roots: Uint8Array[] = []
          for (const [h, txs] of batches.entries())
            roots.push((await applyUnsigned(a, T0 + (h + 1) * 1000, txs)).root)
          const b = await memoryLedger(g)
          const group = await Promise.all(
            batches.map(async (txs, h) => ({
              batch: { height: h + 1, timestampMs: T0 + (h + 1) * 1000, txs },
              checked: await checkTxs(txs, trustAll),
            })),
          )
          // A group stops after a batch that decides an epoch: hand over the rest again.
          const rb = []
          while (rb.length < group.length) {
            const done = await b.applyBatches(group.slice(rb.length))
            assert.ok(done.length > 0)
            assert.ok(done.slice(0, -1).every((x) => x.decided === undefined))
            rb.push(...done)
          }
          assert.deepEqual(
            rb.map((x) => x.root),
            roots,
          )
          assert.deepEqual(b.committee(), a.committee())
          const half = Math.floor(batches.length / 2)
          const src = await memoryLedger(g)
          for (let h = 0; h < half; h++)
            await applyUnsigned(src, T0 + (h + 1) * 1000, batches[h] as Uint8Array[])
          const store = new MemoryOrderedStore()
          const chunks: Uint8Array[] = []
          for await (const c of exportSnapshot(src)) chunks.push(c)
          await importSnapshot(store, chunks, { expectRoot: src.root })
          const c = await Ledger.open({ store })
          assert.deepEqual(c.committee(), src.committee())
          for (let h = half; h < batches.length; h++)
            await applyUnsigned(c, T0 + (h + 1) * 1000, batches[h] as Uint8Array[])
          assert.deepEqual(c.root, a.root)
          assert.deepEqual(c.committee(), a.committee())
          // Invariants: the epoch only moves by decisions, each at a recorded height.
          const st = a.committee()
          assert.ok(st !== undefined && st.base <= a.height)
          assert.equal(st.votes.length, st.members.length)
          if (st.epoch > 0) decided++
        },
      ),
      { numRuns: 25 },
    )
    assert.ok(decided > 0, 'some sequences decide a change')
  })
})
