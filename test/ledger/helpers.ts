/**
 * Shared fixtures of the ledger tests: deterministic keys, a genesis, signers (a real Ed25519 one, and
 * an unsigned one for property runs that check the rules, not the signatures), and a ledger on a
 * MemoryOrderedStore.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { signEd25519 } from '../../src/crypto/index.ts'
import { MemoryOrderedStore } from '../../src/kv/index.ts'
import {
  checkTxs,
  encodeTx,
  Ledger,
  type LedgerGenesis,
  type TxAction,
  type TxSigner,
} from '../../src/ledger/index.ts'

export const T0 = 1_750_000_000_000
export const CHAIN = new Uint8Array(32).fill(0xc1)

/** A real Ed25519 signer from a one-byte seed. */
export async function signer(seedByte: number): Promise<TxSigner> {
  const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(seedByte))
  return { publicKey: key.publicKey.raw, sign: (m) => signEd25519(key, m) }
}

/** A signer with a blank signature: for runs that pass `verify: () => true`. */
export function unsigned(account: Uint8Array): TxSigner {
  return { publicKey: account, sign: () => new Uint8Array(64) }
}

/** A 32-byte account key from one byte (not a curve point: fine where signatures are not checked). */
export const acct = (b: number): Uint8Array => new Uint8Array(32).fill(b)

/** A genesis: `accounts` each with `balance` of `capacity` mana regenerating at `regen`/s. */
export function genesis(
  accounts: readonly Uint8Array[],
  o: { balance?: number; capacity?: number; regen?: number; manaAuthority?: Uint8Array } = {},
): LedgerGenesis {
  const g: LedgerGenesis = {
    chain: CHAIN,
    timestampMs: T0,
    accounts: accounts.map((account) => ({
      account,
      balance: o.balance ?? 1000,
      capacity: o.capacity ?? 10_000,
      regenPerSecond: o.regen ?? 10,
    })),
  }
  if (o.manaAuthority !== undefined) g.manaAuthority = o.manaAuthority
  return g
}

/** A transaction's bytes, unsigned (for `verify: () => true`). */
export async function rawTx(
  from: Uint8Array,
  nonce: number,
  action: TxAction,
  chain = CHAIN,
): Promise<Uint8Array> {
  return (await encodeTx({ chain, nonce, ...action }, unsigned(from))).bytes
}

export const trustAll = { verify: () => true }

/** Apply `txs` (unsigned) as the next height at `timestampMs`. */
export async function applyUnsigned(ledger: Ledger, timestampMs: number, txs: Uint8Array[]) {
  const checked = await checkTxs(txs, trustAll)
  return ledger.applyBatch({ height: ledger.height + 1, timestampMs, txs }, { checked })
}

export async function memoryLedger(g: LedgerGenesis): Promise<Ledger> {
  return Ledger.open({ store: new MemoryOrderedStore() }, { genesis: g })
}
