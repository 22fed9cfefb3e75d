/**
 * The ledger's genesis: the accounts, mana and tokens a federation starts with, as a plain object.
 * The consensus area's signed genesis file carries it (and gives its hash as the chain id); this module
 * defines only its shape, its validation and the state entries it becomes.
 */
import { NodusError } from '../common/errors.ts'
import { type Fail, readInt } from '../crypto/index.ts'
import {
  type AccountEntry,
  accountKey,
  balanceKey,
  CONFIG_KEY,
  encodeAccount,
  encodeAmount,
  encodeConfig,
  encodeSupply,
  encodeToken,
  SUPPLY_KEY,
  tokenKey,
} from './codec.ts'
import {
  COMMITTEE_KEY,
  type CommitteeMember,
  encodeEpochState,
  initialEpochState,
  plainMember,
  readMembers,
} from './committee.ts'
import { KEY_BYTES, MAX_AMOUNT, MAX_MANA_CAPACITY, TOKEN_NAME_PATTERN, tokenId } from './tx.ts'

/** Most accounts, tokens and token balances a genesis may list (each). */
export const MAX_GENESIS_ENTRIES = 1_000_000

/** An account at genesis: its mana (nonce 0). */
export interface GenesisAccount {
  /** Ed25519 public key, 32 bytes. */
  account: Uint8Array
  /** Mana held at genesis, ≤ `capacity`. */
  balance: number
  /** Most mana the account can hold, ≤ 2^43. */
  capacity: number
  /** Mana regenerated per second of commit time. */
  regenPerSecond: number
}

/** A token at genesis: its issuer, name and initial holders (the supply is their sum). */
export interface GenesisToken {
  issuer: Uint8Array
  /** 1–64 of a-z 0-9 . _ -, starting with a letter or digit. */
  name: string
  balances: readonly { holder: Uint8Array; amount: number }[]
}

/** What a federation's ledger starts with. */
export interface LedgerGenesis {
  /** The chain id, 32 bytes: the hash of the federation's signed genesis file. */
  chain: Uint8Array
  /** Genesis time, Unix ms (height 0's commit timestamp): mana regenerates from here. */
  timestampMs: number
  /** The account allowed to sign `mana.configure` (until governance takes over); none when absent. */
  manaAuthority?: Uint8Array
  accounts: readonly GenesisAccount[]
  tokens?: readonly GenesisToken[]
  /**
   * The first epoch's committee (the consensus genesis's members and leader seed): kept in the state
   * so committee changes are ledger transactions (committee.ts). Absent: no committee transactions.
   */
  committee?: {
    epoch: number
    leaderSeed: Uint8Array
    signatureMode: 'ed25519' | 'hybrid'
    members: readonly CommitteeMember[]
  }
}

/** The state entry of the genesis committee, validated as a proposal would be. */
function committeeEntry(c: NonNullable<LedgerGenesis['committee']>, startMs: number): Uint8Array {
  const fail: Fail = (message) => invalid(`committee: ${message}`)
  if (typeof c !== 'object' || c === null) throw invalid('committee must be a map')
  readInt(c.epoch, 'epoch', 0, 2 ** 32 - 1, fail)
  if (!(c.leaderSeed instanceof Uint8Array) || c.leaderSeed.byteLength !== 32)
    throw fail('leaderSeed must be 32 bytes')
  if (c.signatureMode !== 'ed25519' && c.signatureMode !== 'hybrid')
    throw fail('signatureMode must be ed25519 or hybrid')
  const members = readMembers(
    c.members.map((m) => plainMember(m)),
    fail,
  )
  if (members.some((m) => (m.mldsa65 !== undefined) !== (c.signatureMode === 'hybrid')))
    throw fail('members must have ML-DSA-65 keys exactly in hybrid mode')
  return encodeEpochState(initialEpochState({ ...c, members, startMs }))
}

function invalid(reason: string): NodusError {
  return new NodusError('LEDGER_GENESIS_INVALID', `ledger genesis: ${reason}`, { details: { reason } })
}

const isKey = (v: unknown): v is Uint8Array => v instanceof Uint8Array && v.byteLength === KEY_BYTES
const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/**
 * The state entries (logical key, value) of a genesis, after validating it.
 *
 * @throws NodusError `LEDGER_GENESIS_INVALID` (`details.reason` says what) on a key that is not 32
 *   bytes, an amount or time out of bounds, a balance above its capacity, a duplicate account, token
 *   or holder, a token supply above 2^53 − 1, or more than {@link MAX_GENESIS_ENTRIES} of anything
 */
export function genesisEntries(g: LedgerGenesis): [Uint8Array, Uint8Array][] {
  if (typeof g !== 'object' || g === null) throw invalid('not an object')
  if (!isKey(g.chain)) throw invalid('chain must be 32 bytes')
  if (!isInt(g.timestampMs, 0, 2 ** 48)) throw invalid('timestampMs must be Unix ms below 2^48')
  if (g.manaAuthority !== undefined && !isKey(g.manaAuthority))
    throw invalid('manaAuthority must be 32 bytes')
  if (!Array.isArray(g.accounts) || g.accounts.length > MAX_GENESIS_ENTRIES)
    throw invalid(`accounts must be a list of at most ${MAX_GENESIS_ENTRIES}`)
  const tokens = g.tokens ?? []
  if (!Array.isArray(tokens) || tokens.length > MAX_GENESIS_ENTRIES)
    throw invalid(`tokens must be a list of at most ${MAX_GENESIS_ENTRIES}`)
  const out: [Uint8Array, Uint8Array][] = []
  const seen = new Set<string>()
  let initial = 0n
  for (const [i, a] of g.accounts.entries()) {
    if (!isKey(a.account)) throw invalid(`accounts[${i}].account must be 32 bytes`)
    if (seen.has(hex(a.account))) throw invalid(`accounts[${i}] is listed twice`)
    seen.add(hex(a.account))
    if (!isInt(a.capacity, 0, MAX_MANA_CAPACITY))
      throw invalid(`accounts[${i}].capacity must be in [0, 2^43]`)
    if (!isInt(a.balance, 0, a.capacity)) throw invalid(`accounts[${i}].balance must be in [0, capacity]`)
    if (!isInt(a.regenPerSecond, 0, MAX_MANA_CAPACITY))
      throw invalid(`accounts[${i}].regenPerSecond must be in [0, 2^43]`)
    const entry: AccountEntry = {
      nonce: 0,
      nonceMask: 0,
      mana: {
        balance: a.balance,
        capacity: a.capacity,
        regenPerSecond: a.regenPerSecond,
        lastUpdateMs: g.timestampMs,
        carry: 0,
      },
    }
    out.push([accountKey(a.account), encodeAccount(entry)])
    initial += BigInt(a.balance)
  }
  const ids = new Set<string>()
  let holders = 0
  for (const [i, t] of tokens.entries()) {
    if (!isKey(t.issuer)) throw invalid(`tokens[${i}].issuer must be 32 bytes`)
    if (typeof t.name !== 'string' || !TOKEN_NAME_PATTERN.test(t.name))
      throw invalid(`tokens[${i}].name must match ${TOKEN_NAME_PATTERN}`)
    const id = tokenId(t.issuer, t.name)
    if (ids.has(hex(id))) throw invalid(`tokens[${i}] is listed twice`)
    ids.add(hex(id))
    if (!Array.isArray(t.balances)) throw invalid(`tokens[${i}].balances must be a list`)
    holders += t.balances.length
    if (holders > MAX_GENESIS_ENTRIES) throw invalid(`more than ${MAX_GENESIS_ENTRIES} token balances`)
    const held = new Set<string>()
    let supply = 0
    for (const [j, b] of t.balances.entries()) {
      if (!isKey(b.holder)) throw invalid(`tokens[${i}].balances[${j}].holder must be 32 bytes`)
      if (held.has(hex(b.holder))) throw invalid(`tokens[${i}].balances[${j}] is listed twice`)
      held.add(hex(b.holder))
      if (!isInt(b.amount, 1, MAX_AMOUNT))
        throw invalid(`tokens[${i}].balances[${j}].amount must be in [1, 2^53)`)
      supply += b.amount
      if (supply > MAX_AMOUNT) throw invalid(`tokens[${i}] supply is above 2^53 − 1`)
      out.push([balanceKey(id, b.holder), encodeAmount(b.amount)])
    }
    out.push([tokenKey(id), encodeToken({ issuer: t.issuer, supply, name: t.name })])
  }
  const config =
    g.manaAuthority === undefined ? { chain: g.chain } : { chain: g.chain, manaAuthority: g.manaAuthority }
  out.push([CONFIG_KEY, encodeConfig(config)])
  if (g.committee !== undefined) out.push([COMMITTEE_KEY, committeeEntry(g.committee, g.timestampMs)])
  out.push([SUPPLY_KEY, encodeSupply({ initial, regenerated: 0n, charged: 0n, clipped: 0n })])
  return out
}
