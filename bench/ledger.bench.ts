/**
 * The ledger's apply rate in one process (issue 21).
 *
 *   node bench/ledger.bench.ts [--quick]
 *
 * Workload: mana transfers between 1,000 genesis accounts (seeded choice of sender, recipient and
 * amount; every transfer valid), signed beforehand with real Ed25519 keys, committed in batches of
 * 1,000 per height. Two phases, timed apart:
 * - check: decode every envelope and verify its signature (src/ledger/state.ts `checkTxs`), in a
 *   VerifyPool of 2 worker threads and inline on this thread;
 * - apply: `Ledger.applyBatch` with the checked transactions: the nonce and mana rules, the state
 *   entries, the bucket-tree root and one atomic write per height, on a MemoryOrderedStore and on LMDB
 *   (durable: each height is flushed before the next).
 * Peer: TigerBeetle's Node.js prototype reported 200,000 two-phase transfers/s; it is not published in
 * a form we can run here, so there is no peer figure. The MB/s columns hold transfers per second.
 */
import { join } from 'node:path'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { mulberry32 } from '../src/common/prng.ts'
import { signEd25519, VerifyPool } from '../src/crypto/index.ts'
import { LmdbOrderedStore, MemoryOrderedStore, type OrderedStore } from '../src/kv/index.ts'
import { type CheckedTx, checkTxs, encodeTx, Ledger, type LedgerGenesis } from '../src/ledger/index.ts'
import { type BenchOptions, cpuMs, type Row, sig, withTempDir } from './lib.ts'

export const description =
  'The ledger apply rate in one process (issue 21): mana transfers between 1,000 accounts, signed ' +
  'beforehand, 1,000 per committed height. "check" decodes and verifies signatures (VerifyPool, 2 ' +
  'threads; and inline); "apply" runs Ledger.applyBatch on checked transactions: rules, state, ' +
  'bucket-tree root, one atomic write per height (memory store; LMDB, durable). The MB/s columns hold ' +
  'transfers per second. Peer: TigerBeetle’s Node.js prototype reported 200,000 two-phase transfers/s; ' +
  'it cannot be run here, so there is no peer figure. Goal: ≥ 100,000 transfers/s applied.'

const ACCOUNTS = 1000
const BATCH = 1000
const CHAIN = new Uint8Array(32).fill(0x21)
const T0 = 1_750_000_000_000
const TIGERBEETLE = 'TigerBeetle Node.js prototype (reported 200,000/s; not runnable here)'

async function workload(n: number): Promise<{ genesis: LedgerGenesis; txs: Uint8Array[] }> {
  const keys = await Promise.all(
    Array.from({ length: ACCOUNTS }, (_, i) => {
      const seed = new Uint8Array(32)
      new DataView(seed.buffer).setUint32(0, i + 1)
      return generateKeyPairFromSeed('Ed25519', seed)
    }),
  )
  const genesis: LedgerGenesis = {
    chain: CHAIN,
    timestampMs: T0,
    accounts: keys.map((k) => ({
      account: k.publicKey.raw,
      balance: 1e9,
      capacity: 1e12,
      regenPerSecond: 1000,
    })),
  }
  const random = mulberry32(21)
  const nonces = new Array<number>(ACCOUNTS).fill(0)
  const txs: Uint8Array[] = []
  for (let i = 0; i < n; i++) {
    const from = Math.floor(random() * ACCOUNTS)
    const to = (from + 1 + Math.floor(random() * (ACCOUNTS - 1))) % ACCOUNTS
    const key = keys[from] as (typeof keys)[number]
    const nonce = nonces[from] ?? 0
    nonces[from] = nonce + 1
    const tx = await encodeTx(
      {
        chain: CHAIN,
        nonce,
        kind: 'transfer',
        to: (keys[to] as (typeof keys)[number]).publicKey.raw,
        amount: 1 + Math.floor(random() * 1000),
      },
      { publicKey: key.publicKey.raw, sign: (m) => signEd25519(key, m) },
    )
    txs.push(tx.bytes)
  }
  return { genesis, txs }
}

function batches<T>(xs: readonly T[]): T[][] {
  const out: T[][] = []
  for (let i = 0; i < xs.length; i += BATCH) out.push(xs.slice(i, i + BATCH))
  return out
}

/** Transfers/s and CPU µs per transfer of checking `txs` with `threads` verification threads. */
async function check(
  txs: Uint8Array[],
  threads: number,
): Promise<{ checked: CheckedTx[][]; perSec: number; cpuUs: number }> {
  const pool = new VerifyPool({ threads, maxBatch: 64, maxQueued: 100_000 })
  try {
    await checkTxs(txs.slice(0, 200), { verify: (c, o) => pool.verify(c, o) }) // start the workers
    const c0 = cpuMs()
    const t0 = performance.now()
    const checked: CheckedTx[][] = []
    for (const b of batches(txs)) checked.push(await checkTxs(b, { verify: (c, o) => pool.verify(c, o) }))
    const ms = performance.now() - t0
    if (checked.flat().some((c) => c.tx === undefined)) throw new Error('a transaction did not check')
    return {
      checked,
      perSec: Math.round((txs.length / ms) * 1000),
      cpuUs: sig(((cpuMs() - c0) * 1000) / txs.length),
    }
  } finally {
    await pool.close()
  }
}

/** Transfers/s and CPU µs per transfer of applying the checked batches on `store`. */
async function apply(
  store: OrderedStore,
  genesis: LedgerGenesis,
  txs: Uint8Array[],
  checked: CheckedTx[][],
): Promise<{ perSec: number; cpuUs: number; root: string }> {
  const ledger = await Ledger.open({ store }, { genesis })
  const raw = batches(txs)
  const c0 = cpuMs()
  const t0 = performance.now()
  for (const [i, b] of checked.entries()) {
    const r = await ledger.applyBatch(
      { height: i + 1, timestampMs: T0 + (i + 1) * 100, txs: raw[i] as Uint8Array[] },
      { checked: b },
    )
    if (r.outcomes.some((o) => o.code !== undefined))
      throw new Error(`height ${i + 1}: a transfer was refused`)
  }
  const ms = performance.now() - t0
  return {
    perSec: Math.round((txs.length / ms) * 1000),
    cpuUs: sig(((cpuMs() - c0) * 1000) / txs.length),
    root: Buffer.from(ledger.root).toString('hex').slice(0, 16),
  }
}

function row(name: string, perSec: number, cpuUs: number, note: string, peer = '-'): Row {
  return {
    name,
    ours_MBps: perSec,
    peer,
    peer_MBps: null,
    ratio: null,
    note: `${note}; ${cpuUs} CPU µs per transfer`,
  }
}

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  const n = quick ? 50_000 : 200_000
  const { genesis, txs } = await workload(n)
  const pooled = await check(txs, 2)
  const inline = await check(txs, 0)
  const mem = await apply(new MemoryOrderedStore(), genesis, txs, pooled.checked)
  const lmdb = await withTempDir('nodus-ledger-bench-', async (dir) => {
    const store = LmdbOrderedStore.open({ path: join(dir, 'ledger') })
    try {
      return await apply(store, genesis, txs, pooled.checked)
    } finally {
      await store.close()
    }
  })
  if (mem.root !== lmdb.root) throw new Error('the memory and LMDB ledgers disagree on the root')
  const what = `${n.toLocaleString('en')} transfers, ${ACCOUNTS.toLocaleString('en')} accounts, ${BATCH} per height`
  return [
    row(
      'ledger apply, memory store (transfers/s)',
      mem.perSec,
      mem.cpuUs,
      `${what}; signatures checked beforehand`,
      TIGERBEETLE,
    ),
    row(
      'ledger apply, LMDB, durable per height (transfers/s)',
      lmdb.perSec,
      lmdb.cpuUs,
      `${what}; root ${lmdb.root}…`,
      TIGERBEETLE,
    ),
    row(
      'ledger check: decode + verify, VerifyPool 2 threads (transfers/s)',
      pooled.perSec,
      pooled.cpuUs,
      what,
    ),
    row('ledger check: decode + verify, inline (transfers/s)', inline.perSec, inline.cpuUs, what),
  ]
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await run({ quick: process.argv.includes('--quick') }))
    process.stdout.write(`${JSON.stringify(r)}\n`)
}
