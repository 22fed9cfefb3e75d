/**
 * The ledger state machine (src/ledger/state.ts, apply.ts): seeded properties over random workloads
 * (supply identity, no negative balances, token supply = sum of holdings, the nonce rule against a
 * model, identical roots on independent stores), and the rules of each kind.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { MemoryOrderedStore } from '../../src/kv/index.ts'
import { decodeAccount, decodeAmount, decodeToken } from '../../src/ledger/codec.ts'
import { checkTxs, encodeTx, Ledger, NONCE_WINDOW, type TxAction, tokenId } from '../../src/ledger/index.ts'
import { assertProperty } from '../utils/property.ts'
import { acct, applyUnsigned, CHAIN, genesis, memoryLedger, rawTx, signer, T0 } from './helpers.ts'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** Every state entry's invariant, and the supply identity. */
function checkInvariants(l: Ledger): void {
  let manaSum = 0n
  const tokenSupply = new Map<string, number>()
  const held = new Map<string, number>()
  for (const [k, v] of l.store.range({ start: Uint8Array.of(0x53), end: Uint8Array.of(0x54) })) {
    const key = k.subarray(3)
    if (key[0] === 0x01) {
      const a = decodeAccount(v)
      assert.ok(a !== undefined, 'an account decodes')
      assert.ok(a.mana.balance >= 0 && a.mana.balance <= a.mana.capacity, 'mana within [0, capacity]')
      manaSum += BigInt(a.mana.balance)
    } else if (key[0] === 0x02) {
      const t = decodeToken(v)
      assert.ok(t !== undefined)
      tokenSupply.set(hex(key.subarray(1)), t.supply)
    } else if (key[0] === 0x03) {
      const amount = decodeAmount(v)
      assert.ok(amount !== undefined && amount > 0, 'token balances are positive')
      const id = hex(key.subarray(1, 33))
      held.set(id, (held.get(id) ?? 0) + amount)
    }
  }
  const s = l.supply()
  assert.equal(manaSum, s.initial + s.regenerated - s.charged - s.clipped, 'mana supply identity')
  for (const [id, supply] of tokenSupply) assert.equal(held.get(id) ?? 0, supply, 'token supply = holdings')
  for (const id of held.keys()) assert.ok(tokenSupply.has(id), 'no holdings of an unknown token')
}

const ACCOUNTS = [acct(1), acct(2), acct(3), acct(4)]
const STRANGER = acct(9)
const tokenOf = (i: number): Uint8Array => tokenId(ACCOUNTS[i] as Uint8Array, 't')

const arbStep = fc.record({
  from: fc.integer({ min: 0, max: 3 }),
  to: fc.integer({ min: 0, max: 4 }),
  kind: fc.constantFrom('mana', 'mana', 'token', 'mint', 'burn', 'create', 'charge', 'configure'),
  tokenOwner: fc.integer({ min: 0, max: 3 }),
  amount: fc.oneof(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 1, max: 2 ** 53 - 1 })),
  nonce: fc.constantFrom('next', 'next', 'next', 'next', 'replay', 'ahead', 'far'),
  /** 0: another federation's chain (1 in 20). */
  chain: fc.integer({ min: 0, max: 19 }),
  dtMs: fc.integer({ min: 0, max: 3000 }),
  cut: fc.integer({ min: 0, max: 4 }),
})

function actionOf(s: Step): TxAction {
  const to = s.to === 4 ? STRANGER : (ACCOUNTS[s.to] as Uint8Array)
  const token = tokenOf(s.tokenOwner)
  switch (s.kind) {
    case 'mana':
      return { kind: 'transfer', to, amount: s.amount }
    case 'token':
      return { kind: 'transfer', to, amount: s.amount, token }
    case 'mint':
      return { kind: 'mint', token, to, amount: s.amount }
    case 'burn':
      return { kind: 'burn', token, amount: s.amount }
    case 'create':
      return { kind: 'token.create', name: 't' }
    case 'charge':
      return { kind: 'charge', purpose: 'job', amount: s.amount }
    default:
      return { kind: 'mana.configure', account: to, capacity: s.amount % 5000, regenPerSecond: s.amount % 7 }
  }
}
type Step = {
  from: number
  to: number
  kind: string
  tokenOwner: number
  amount: number
  nonce: string
  chain: number
  dtMs: number
  cut: number
}

/** The nonce rule, as a model: used nonces per account. */
class NonceModel {
  readonly used = new Map<number, Set<number>>()
  lowest(from: number): number {
    const u = this.used.get(from) ?? new Set()
    let n = 0
    while (u.has(n)) n++
    return n
  }
  pick(from: number, mode: string): number {
    const low = this.lowest(from)
    if (mode === 'replay') return Math.max(0, low - 1)
    if (mode === 'ahead') return low + 1 + (from % 5)
    if (mode === 'far') return low + NONCE_WINDOW
    return low
  }
  accepts(from: number, n: number): boolean {
    const u = this.used.get(from) ?? new Set()
    return !u.has(n) && n - this.lowest(from) < NONCE_WINDOW
  }
  use(from: number, n: number): void {
    const u = this.used.get(from) ?? new Set()
    u.add(n)
    this.used.set(from, u)
  }
}

describe('ledger state machine', () => {
  it('keeps supply, balances, nonces and roots right over random workloads (property)', async () => {
    await assertProperty(
      fc.asyncProperty(fc.array(arbStep, { minLength: 1, maxLength: 60 }), async (steps) => {
        const g = genesis(ACCOUNTS, { manaAuthority: ACCOUNTS[0] as Uint8Array })
        const a = await memoryLedger(g)
        const b = await memoryLedger(g)
        assert.deepEqual(a.root, b.root)
        const model = new NonceModel()
        let t = T0
        let batch: { tx: Uint8Array; from: number; nonce: number; chainOk: boolean }[] = []
        const flush = async (): Promise<void> => {
          const txs = batch.map((x) => x.tx)
          const ra = await applyUnsigned(a, t, txs)
          const rb = await applyUnsigned(b, t, txs)
          assert.deepEqual(ra.root, rb.root, 'identical inputs give identical roots')
          assert.deepEqual(ra.outcomes, rb.outcomes)
          assert.equal(ra.outcomes.length, txs.length)
          for (const [i, x] of batch.entries()) {
            const code = ra.outcomes[i]?.code
            if (!x.chainOk) {
              assert.equal(code, 'LEDGER_TX_WRONG_CHAIN')
              continue
            }
            const ok = model.accepts(x.from, x.nonce)
            assert.equal(code === 'LEDGER_TX_BAD_NONCE', !ok, `nonce ${x.nonce} of ${x.from}: ${code}`)
            if (ok) model.use(x.from, x.nonce)
          }
          checkInvariants(a)
          batch = []
        }
        for (const s of steps) {
          const from = s.from
          const chainOk = s.chain !== 0
          // Nonces are picked as the batch is built, against the model as of the last batch plus the
          // batch so far (used optimistically: the model is checked when the batch is applied).
          const nonce =
            model.pick(from, s.nonce) + batch.filter((x) => x.from === from && s.nonce === 'next').length
          const chain = chainOk ? CHAIN : new Uint8Array(32)
          batch.push({
            tx: await rawTx(ACCOUNTS[from] as Uint8Array, nonce, actionOf(s), chain),
            from,
            nonce,
            chainOk,
          })
          t += s.dtMs
          if (s.cut === 0) await flush()
        }
        await flush()
        assert.deepEqual(a.root, b.root)
        assert.equal(a.height, b.height)
      }),
      { numRuns: 40 },
    )
  })

  it('refuse batches out of order and keep the state', async () => {
    const l = await memoryLedger(genesis(ACCOUNTS))
    const root = l.root
    const tx = await rawTx(acct(1), 0, { kind: 'charge', purpose: 'vote', amount: 1 })
    await assert.rejects(l.applyBatch({ height: 2, timestampMs: T0, txs: [tx] }), (e: unknown) =>
      isNodusError(e, 'LEDGER_BATCH_OUT_OF_ORDER'),
    )
    await assert.rejects(l.applyBatch({ height: 1, timestampMs: T0 - 1, txs: [tx] }), (e: unknown) =>
      isNodusError(e, 'LEDGER_BATCH_OUT_OF_ORDER'),
    )
    assert.deepEqual(l.root, root)
    assert.equal(l.height, 0)
    const r = await applyUnsigned(l, T0, [])
    assert.equal(r.height, 1)
    assert.deepEqual(r.root, root, 'an empty batch at the same time changes no state')
    assert.deepEqual(l.rootAt(1)?.root, root)
    assert.deepEqual(l.rootAt(0)?.root, root)
  })

  it('check signatures: a forged or malformed transaction is refused, in place, and changes nothing', async () => {
    const alice = await signer(1)
    const bob = await signer(2)
    const l = await memoryLedger(genesis([alice.publicKey, bob.publicKey]))
    const good = await encodeTx(
      { chain: CHAIN, nonce: 0, kind: 'transfer', to: bob.publicKey, amount: 10 },
      alice,
    )
    const forged = await encodeTx(
      { chain: CHAIN, nonce: 1, kind: 'transfer', to: bob.publicKey, amount: 10 },
      {
        publicKey: alice.publicKey,
        sign: (m) => bob.sign(m),
      },
    )
    const r = await l.applyBatch({
      height: 1,
      timestampMs: T0,
      txs: [good.bytes, forged.bytes, Uint8Array.of(1, 2)],
    })
    assert.deepEqual(r.outcomes, [
      { id: good.id },
      { id: forged.id, code: 'SIGNATURE_INVALID' },
      { id: undefined, code: 'LEDGER_TX_INVALID' },
    ])
    assert.equal(l.account(alice.publicKey)?.mana.balance, 990)
    assert.equal(l.account(alice.publicKey)?.nonce, 1, 'the forged transaction used no nonce')
    const checked = await checkTxs([good.bytes])
    await assert.rejects(l.applyBatch({ height: 2, timestampMs: T0, txs: [] }, { checked }), (e: unknown) =>
      isNodusError(e, 'INVALID_ARGUMENT'),
    )
  })

  it('apply each kind’s rules: funds, capacity, issuers, tokens, the mana authority', async () => {
    const [a, b, c] = ACCOUNTS as [Uint8Array, Uint8Array, Uint8Array]
    const l = await memoryLedger(genesis([a, b], { balance: 100, capacity: 200, regen: 0, manaAuthority: a }))
    const tok = tokenId(b, 'gold')
    const codes = async (txs: Promise<Uint8Array>[]) =>
      (await applyUnsigned(l, T0, await Promise.all(txs))).outcomes.map((o) => o.code ?? 'ok')
    assert.deepEqual(
      await codes([
        rawTx(a, 0, { kind: 'transfer', to: b, amount: 101 }), // more than a has
        rawTx(a, 1, { kind: 'transfer', to: b, amount: 100 }), // fine: b 200
        rawTx(b, 0, { kind: 'transfer', to: a, amount: 1 }), // fine: a 1, b 199
        rawTx(a, 2, { kind: 'transfer', to: c, amount: 1 }), // c has no capacity
        rawTx(b, 1, { kind: 'token.create', name: 'gold' }),
        rawTx(b, 2, { kind: 'token.create', name: 'gold' }),
        rawTx(a, 3, { kind: 'mint', token: tok, to: a, amount: 5 }), // not the issuer
        rawTx(b, 3, { kind: 'mint', token: tok, to: c, amount: 2 ** 53 - 1 }),
        rawTx(b, 4, { kind: 'mint', token: tok, to: b, amount: 1 }), // supply overflow
        rawTx(c, 0, { kind: 'transfer', to: b, amount: 10, token: tok }),
        rawTx(b, 5, { kind: 'burn', token: tok, amount: 10 }),
        rawTx(b, 6, { kind: 'burn', token: tok, amount: 11 }),
        rawTx(a, 4, { kind: 'transfer', to: b, amount: 1, token: acct(0x77) }),
        rawTx(b, 7, { kind: 'mana.configure', account: c, capacity: 50, regenPerSecond: 1 }), // not the authority
        rawTx(a, 5, { kind: 'mana.configure', account: c, capacity: 50, regenPerSecond: 1 }),
        rawTx(b, 8, { kind: 'transfer', to: c, amount: 50 }),
        rawTx(a, 6, { kind: 'mana.configure', account: c, capacity: 20, regenPerSecond: 0 }), // clips 30
        rawTx(c, 1, { kind: 'charge', purpose: 'proposal', amount: 21 }),
        rawTx(c, 2, { kind: 'charge', purpose: 'proposal', amount: 20 }),
      ]),
      [
        'LEDGER_TX_INSUFFICIENT_FUNDS',
        'ok',
        'ok',
        'LEDGER_TX_OVER_CAPACITY',
        'ok',
        'LEDGER_TX_TOKEN_EXISTS',
        'LEDGER_TX_NOT_ISSUER',
        'ok',
        'LEDGER_TX_OVERFLOW',
        'ok',
        'ok',
        'LEDGER_TX_INSUFFICIENT_FUNDS',
        'LEDGER_TX_TOKEN_UNKNOWN',
        'LEDGER_TX_NOT_ISSUER',
        'ok',
        'ok',
        'ok',
        'LEDGER_TX_INSUFFICIENT_FUNDS',
        'ok',
      ],
    )
    assert.equal(l.token(tok)?.supply, 2 ** 53 - 11)
    assert.equal(l.tokenBalance(tok, c), 2 ** 53 - 11)
    assert.equal(l.tokenBalance(tok, b), 0)
    assert.equal(l.account(c)?.mana.balance, 0)
    assert.deepEqual(l.supply(), { initial: 200n, regenerated: 0n, charged: 20n, clipped: 30n })
    assert.equal(l.account(a)?.nonce, 7, 'refused transactions past the nonce check used their nonce')
    checkInvariants(l)
  })

  it('regenerate from commit timestamps only: the same batches give the same balances whenever applied', async () => {
    const [a, b] = ACCOUNTS as [Uint8Array, Uint8Array]
    const l = await memoryLedger(genesis([a, b], { balance: 0, capacity: 1000, regen: 3 }))
    await applyUnsigned(l, T0 + 10_500, [await rawTx(a, 0, { kind: 'charge', purpose: 'job', amount: 31 })])
    assert.equal(l.account(a)?.mana.balance, 0) // 31.5 regenerated, 31 charged, carry 500; then 1.5 + 0.5
    await applyUnsigned(l, T0 + 11_000, [])
    assert.equal(l.account(a)?.mana.balance, 2, 'views regenerate to the last commit time, carry included')
    assert.equal(l.account(b)?.mana.balance, 33)
  })

  it('open: an empty store needs a genesis; a store keeps its chain', async () => {
    const store = new MemoryOrderedStore()
    await assert.rejects(Ledger.open({ store }), (e: unknown) => isNodusError(e, 'LEDGER_GENESIS_INVALID'))
    const g = genesis(ACCOUNTS)
    await Ledger.open({ store }, { genesis: g })
    await assert.rejects(Ledger.open({ store }, { genesis: { ...g, chain: acct(0x55) } }), (e: unknown) =>
      isNodusError(e, 'LEDGER_GENESIS_INVALID'),
    )
    const bad = [
      { ...g, chain: new Uint8Array(31) },
      { ...g, accounts: [...g.accounts, ...g.accounts] },
      { ...g, accounts: [{ account: acct(1), balance: 11, capacity: 10, regenPerSecond: 0 }] },
      {
        ...g,
        tokens: [
          {
            issuer: acct(1),
            name: 'x',
            balances: [
              { holder: acct(2), amount: 2 ** 53 - 1 },
              { holder: acct(3), amount: 1 },
            ],
          },
        ],
      },
    ]
    for (const bg of bad)
      await assert.rejects(Ledger.open({ store: new MemoryOrderedStore() }, { genesis: bg }), (e: unknown) =>
        isNodusError(e, 'LEDGER_GENESIS_INVALID'),
      )
  })
})
