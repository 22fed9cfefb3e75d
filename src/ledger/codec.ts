/**
 * The ledger's state entries: their logical keys and fixed binary values (a disk format and the input
 * of the state root, so changing it is a new format). Integers are big-endian unsigned 64-bit (safe
 * integers: the high word below 2^21). Logical keys:
 * - `00 "config"`: the genesis parameters (dag-cbor `{ chain, manaAuthority? }`);
 * - `00 "supply"`: the mana supply counters, four u64: initial, regenerated, charged, clipped;
 * - `01 ‖ account(32)`: nonce u64, used-nonce bitmap u32, then the mana account (mana.ts): balance,
 *   capacity, regenPerSecond, lastUpdateMs u64, carry u16 (46 bytes);
 * - `02 ‖ token(32)`: issuer (32), supply u64, name (UTF-8);
 * - `03 ‖ token(32) ‖ holder(32)`: balance u64 (absent when zero);
 * - `00 "committee"` and `04 ‖ hash(32)`: the committee and pending proposals (committee.ts).
 */
import * as dagCbor from '@ipld/dag-cbor'
import { COMMITTEE_KEY, decodeEpochState, decodeProposal, PROPOSAL_TAG } from './committee.ts'
import type { ManaAccount } from './mana.ts'

export const CONFIG_KEY = Uint8Array.from([0x00, ...new TextEncoder().encode('config')])
export const SUPPLY_KEY = Uint8Array.from([0x00, ...new TextEncoder().encode('supply')])
export const ACCOUNT_TAG = 0x01
export const TOKEN_TAG = 0x02
export const BALANCE_TAG = 0x03

/** An account: its nonce state and its mana. */
export interface AccountEntry {
  /** Lowest nonce not used yet. */
  nonce: number
  /** Bit i set: nonce `nonce + i` is used (bit 0 is never set: `nonce` would have moved on). */
  nonceMask: number
  mana: ManaAccount
}

/** A token: who issues it, how many exist, its name. */
export interface TokenEntry {
  issuer: Uint8Array
  supply: number
  name: string
}

/** The mana supply counters: sum of balances = initial + regenerated − charged − clipped. */
export interface SupplyCounters {
  initial: bigint
  regenerated: bigint
  charged: bigint
  clipped: bigint
}

/** The genesis parameters kept in the state (and so in the root and snapshots). */
export interface LedgerConfig {
  chain: Uint8Array
  manaAuthority?: Uint8Array
}

const HI = 2 ** 32

// Byte by byte rather than through a DataView: a DataView per entry cost more than the entry.
function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24
  b[at + 1] = (v >>> 16) & 0xff
  b[at + 2] = (v >>> 8) & 0xff
  b[at + 3] = v & 0xff
}

function getU32(b: Uint8Array, at: number): number {
  return (
    (((b[at] as number) << 24) |
      ((b[at + 1] as number) << 16) |
      ((b[at + 2] as number) << 8) |
      (b[at + 3] as number)) >>>
    0
  )
}

function putU64(b: Uint8Array, at: number, v: number): void {
  putU32(b, at, Math.floor(v / HI))
  putU32(b, at + 4, v >>> 0)
}

function getU64(b: Uint8Array, at: number): number {
  return getU32(b, at) * HI + getU32(b, at + 4)
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength)
}

export function accountKey(account: Uint8Array): Uint8Array {
  const k = new Uint8Array(33)
  k[0] = ACCOUNT_TAG
  k.set(account, 1)
  return k
}

export function tokenKey(token: Uint8Array): Uint8Array {
  const k = new Uint8Array(33)
  k[0] = TOKEN_TAG
  k.set(token, 1)
  return k
}

export function balanceKey(token: Uint8Array, holder: Uint8Array): Uint8Array {
  const k = new Uint8Array(65)
  k[0] = BALANCE_TAG
  k.set(token, 1)
  k.set(holder, 33)
  return k
}

const ACCOUNT_BYTES = 46

export function encodeAccount(a: AccountEntry): Uint8Array {
  const out = new Uint8Array(ACCOUNT_BYTES)
  putU64(out, 0, a.nonce)
  putU32(out, 8, a.nonceMask >>> 0)
  putU64(out, 12, a.mana.balance)
  putU64(out, 20, a.mana.capacity)
  putU64(out, 28, a.mana.regenPerSecond)
  putU64(out, 36, a.mana.lastUpdateMs)
  out[44] = a.mana.carry >> 8
  out[45] = a.mana.carry & 0xff
  return out
}

/** @returns undefined when `b` is not an account value */
export function decodeAccount(b: Uint8Array): AccountEntry | undefined {
  if (b.byteLength !== ACCOUNT_BYTES) return undefined
  const mana: ManaAccount = {
    balance: getU64(b, 12),
    capacity: getU64(b, 20),
    regenPerSecond: getU64(b, 28),
    lastUpdateMs: getU64(b, 36),
    carry: ((b[44] as number) << 8) | (b[45] as number),
  }
  const a = { nonce: getU64(b, 0), nonceMask: getU32(b, 8), mana }
  const safe = [a.nonce, mana.balance, mana.capacity, mana.regenPerSecond, mana.lastUpdateMs]
  if (!safe.every(Number.isSafeInteger) || mana.balance > mana.capacity || mana.carry >= 1000)
    return undefined
  if ((a.nonceMask & 1) !== 0) return undefined
  return a
}

export function encodeToken(t: TokenEntry): Uint8Array {
  const name = new TextEncoder().encode(t.name)
  const out = new Uint8Array(40 + name.byteLength)
  out.set(t.issuer, 0)
  putU64(out, 32, t.supply)
  out.set(name, 40)
  return out
}

export function decodeToken(b: Uint8Array): TokenEntry | undefined {
  if (b.byteLength < 41 || b.byteLength > 40 + 64) return undefined
  const supply = getU64(b, 32)
  if (!Number.isSafeInteger(supply)) return undefined
  return { issuer: new Uint8Array(b.subarray(0, 32)), supply, name: new TextDecoder().decode(b.subarray(40)) }
}

export function encodeAmount(v: number): Uint8Array {
  const out = new Uint8Array(8)
  putU64(out, 0, v)
  return out
}

export function decodeAmount(b: Uint8Array): number | undefined {
  if (b.byteLength !== 8) return undefined
  const v = getU64(b, 0)
  return Number.isSafeInteger(v) && v > 0 ? v : undefined
}

export function encodeSupply(s: SupplyCounters): Uint8Array {
  const out = new Uint8Array(32)
  const dv = view(out)
  dv.setBigUint64(0, s.initial)
  dv.setBigUint64(8, s.regenerated)
  dv.setBigUint64(16, s.charged)
  dv.setBigUint64(24, s.clipped)
  return out
}

export function decodeSupply(b: Uint8Array): SupplyCounters | undefined {
  if (b.byteLength !== 32) return undefined
  const dv = view(b)
  return {
    initial: dv.getBigUint64(0),
    regenerated: dv.getBigUint64(8),
    charged: dv.getBigUint64(16),
    clipped: dv.getBigUint64(24),
  }
}

export function encodeConfig(c: LedgerConfig): Uint8Array {
  return dagCbor.encode(c.manaAuthority === undefined ? { chain: c.chain } : c)
}

export function decodeConfig(b: Uint8Array): LedgerConfig | undefined {
  try {
    const m = dagCbor.decode(b) as Record<string, unknown>
    if (!(m.chain instanceof Uint8Array) || m.chain.byteLength !== 32) return undefined
    if (m.manaAuthority === undefined) return { chain: m.chain }
    if (!(m.manaAuthority instanceof Uint8Array) || m.manaAuthority.byteLength !== 32) return undefined
    return { chain: m.chain, manaAuthority: m.manaAuthority }
  } catch {
    return undefined
  }
}

/** True when `value` decodes as the entry its logical `key` names (snapshot import checks this). */
export function validEntry(key: Uint8Array, value: Uint8Array): boolean {
  const tag = key[0]
  if (tag === ACCOUNT_TAG) return key.byteLength === 33 && decodeAccount(value) !== undefined
  if (tag === TOKEN_TAG) return key.byteLength === 33 && decodeToken(value) !== undefined
  if (tag === BALANCE_TAG) return key.byteLength === 65 && decodeAmount(value) !== undefined
  if (Buffer.compare(key, CONFIG_KEY) === 0) return decodeConfig(value) !== undefined
  if (Buffer.compare(key, SUPPLY_KEY) === 0) return decodeSupply(value) !== undefined
  if (tag === PROPOSAL_TAG) return key.byteLength === 33 && decodeProposal(value) !== undefined
  if (Buffer.compare(key, COMMITTEE_KEY) === 0) return decodeEpochState(value) !== undefined
  return false
}

/** u64 big-endian of a height (store keys order by height). */
export function heightBytes(height: number): Uint8Array {
  return encodeAmount(height)
}

export function readU64(b: Uint8Array, at: number): number {
  return getU64(b, at)
}
