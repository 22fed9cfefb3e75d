/**
 * Applying transactions: the rules of each kind over a batch's working set of state entries. Pure and
 * deterministic: the inputs are the entries as stored, the transaction and the batch's commit time.
 *
 * Rules (README.md "Invariants"):
 * - another chain's transaction is refused and changes nothing (`LEDGER_TX_WRONG_CHAIN`);
 * - the nonce must be unused and within {@link NONCE_WINDOW} of the account's next nonce, else
 *   `LEDGER_TX_BAD_NONCE` and nothing changes;
 * - past that, the nonce is used whatever the outcome (as Ethereum uses the nonce of a reverted
 *   transaction): a refused transaction can never apply later, when the state would let it, and does
 *   not hold up the account's later nonces; it changes nothing else (every check runs before any write,
 *   regeneration included);
 * - balances never go negative nor above their bound (mana: its capacity; tokens: 2^53 − 1).
 */
import { bytesEqual } from '../common/bytes.ts'
import type { ErrorCode } from '../common/errors.ts'
import type { OrderedReader, OrderedWriter } from '../kv/index.ts'
import {
  type AccountEntry,
  accountKey,
  balanceKey,
  decodeAccount,
  decodeAmount,
  decodeSupply,
  decodeToken,
  encodeAccount,
  encodeAmount,
  encodeSupply,
  encodeToken,
  type LedgerConfig,
  SUPPLY_KEY,
  type SupplyCounters,
  type TokenEntry,
  tokenKey,
} from './codec.ts'
import {
  COMMITTEE_KEY,
  decodeEpochState,
  type EpochState,
  encodeEpochState,
  proposalKey,
} from './committee.ts'
import { propose, vote } from './epoch.ts'
import { emptyMana, type ManaAccount, reconfigure, regenerate } from './mana.ts'
import { bucketOf, hashBucket } from './root.ts'
import { MAX_AMOUNT, NONCE_WINDOW, type TxBody, tokenId } from './tx.ts'

/** Why a committed transaction was refused. */
export type RefusalCode = Extract<
  ErrorCode,
  | 'LEDGER_TX_INVALID'
  | 'SIGNATURE_INVALID'
  | 'LEDGER_TX_WRONG_CHAIN'
  | 'LEDGER_TX_BAD_NONCE'
  | 'LEDGER_TX_INSUFFICIENT_FUNDS'
  | 'LEDGER_TX_NOT_ISSUER'
  | 'LEDGER_TX_TOKEN_UNKNOWN'
  | 'LEDGER_TX_TOKEN_EXISTS'
  | 'LEDGER_TX_OVER_CAPACITY'
  | 'LEDGER_TX_OVERFLOW'
  | 'LEDGER_TX_NOT_MEMBER'
  | 'LEDGER_TX_WRONG_EPOCH'
  | 'LEDGER_TX_EPOCH_DECIDED'
  | 'LEDGER_TX_PROPOSAL_UNKNOWN'
  | 'LEDGER_TX_COMMITTEE_INVALID'
>

/** Prefix of the physical keys of state entries: `S` ‖ bucket (u16) ‖ logical key. */
export const STATE_PREFIX = 0x53

/** The physical store key of a logical state key in bucket `bucket`. */
export function physicalKey(bucket: number, logical: Uint8Array): Uint8Array {
  const k = new Uint8Array(3 + logical.byteLength)
  k[0] = STATE_PREFIX
  k[1] = bucket >> 8
  k[2] = bucket & 0xff
  k.set(logical, 3)
  return k
}

/** The store key range of bucket `b`'s entries. */
export function bucketRange(b: number): { start: Uint8Array; end: Uint8Array } {
  const start = Uint8Array.of(STATE_PREFIX, b >> 8, b & 0xff)
  const end =
    b === 0xffff ? Uint8Array.of(STATE_PREFIX + 1) : Uint8Array.of(STATE_PREFIX, (b + 1) >> 8, (b + 1) & 0xff)
  return { start, end }
}

/** One state entry of a batch's working set: read once, changed in place, written back if dirty. */
export interface Slot<T> {
  logical: Uint8Array
  bucket: number
  value: T | undefined
  dirty: boolean
  /** How the value is stored (absent: by the key's tag, {@link encodeSlot}). */
  encode?: (value: T) => Uint8Array
}

const cacheKey = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')

/**
 * The entries a batch reads and writes, decoded, read through `reader` (the batch's writer) once each
 * and written back by {@link WorkingSet.flush}.
 */
export class WorkingSet {
  readonly #reader: OrderedReader
  readonly #slots = new Map<string, Slot<unknown>>()
  readonly config: LedgerConfig
  readonly supply: SupplyCounters
  /** The batch's height (committee decisions record it). */
  readonly height: number
  /** The epoch this batch decided (its committee now the state's), if it did. */
  decided: EpochState | undefined
  #supplyDirty = false

  constructor(reader: OrderedReader, config: LedgerConfig, height = 0) {
    this.#reader = reader
    this.config = config
    this.height = height
    const raw = reader.get(physicalKey(bucketOf(SUPPLY_KEY), SUPPLY_KEY))
    const supply = raw === undefined ? undefined : decodeSupply(raw)
    if (supply === undefined) throw new Error('ledger state has no supply counters')
    this.supply = supply
  }

  #slot<T>(
    logical: Uint8Array,
    decode: (b: Uint8Array) => T | undefined,
    encode?: (value: T) => Uint8Array,
  ): Slot<T> {
    const id = cacheKey(logical)
    let s = this.#slots.get(id) as Slot<T> | undefined
    if (s === undefined) {
      const bucket = bucketOf(logical)
      const raw = this.#reader.get(physicalKey(bucket, logical))
      s = { logical, bucket, value: raw === undefined ? undefined : decode(raw), dirty: false }
      if (encode !== undefined) s.encode = encode
      this.#slots.set(id, s as Slot<unknown>)
    }
    return s
  }

  /** The committee entry (committee.ts); undefined in a ledger whose genesis has no committee. */
  epoch(): Slot<EpochState> {
    return this.#slot(COMMITTEE_KEY, decodeEpochState, encodeEpochState)
  }

  /** A pending committee proposal's stored bytes (committee.ts `encodeProposal`). */
  proposal(hash: Uint8Array): Slot<Uint8Array> {
    return this.#slot(
      proposalKey(hash),
      (b) => b,
      (b) => b,
    )
  }

  account(key: Uint8Array): Slot<AccountEntry> {
    return this.#slot(accountKey(key), decodeAccount)
  }

  token(id: Uint8Array): Slot<TokenEntry> {
    return this.#slot(tokenKey(id), decodeToken)
  }

  balance(token: Uint8Array, holder: Uint8Array): Slot<number> {
    return this.#slot(balanceKey(token, holder), decodeAmount)
  }

  /** Count regeneration (as it is written back) in the supply counters. */
  countRegenerated(units: number): void {
    if (units > 0) {
      this.supply.regenerated += BigInt(units)
      this.#supplyDirty = true
    }
  }

  count(field: 'charged' | 'clipped', units: number): void {
    if (units > 0) {
      this.supply[field] += BigInt(units)
      this.#supplyDirty = true
    }
  }

  /**
   * Write the changed entries through `w` and rehash their buckets.
   *
   * @returns the changed buckets' new hashes
   */
  flush(w: OrderedWriter): Map<number, Uint8Array> {
    const dirty = new Set<number>()
    if (this.#supplyDirty) {
      const b = bucketOf(SUPPLY_KEY)
      w.put(physicalKey(b, SUPPLY_KEY), encodeSupply(this.supply))
      dirty.add(b)
    }
    for (const s of this.#slots.values()) {
      if (!s.dirty) continue
      const key = physicalKey(s.bucket, s.logical)
      const bytes = encodeSlot(s)
      if (bytes === undefined) w.del(key)
      else w.put(key, bytes)
      dirty.add(s.bucket)
    }
    const changed = new Map<number, Uint8Array>()
    for (const b of dirty) changed.set(b, hashBucket(bucketEntries(w, b)))
    return changed
  }
}

function encodeSlot(s: Slot<unknown>): Uint8Array | undefined {
  if (s.value === undefined) return undefined
  if (s.encode !== undefined) return s.encode(s.value)
  const tag = s.logical[0]
  if (tag === 0x01) return encodeAccount(s.value as AccountEntry)
  if (tag === 0x02) return encodeToken(s.value as TokenEntry)
  const amount = s.value as number
  return amount === 0 ? undefined : encodeAmount(amount)
}

/** Bucket `b`'s entries (logical key, value) in key order. */
export function* bucketEntries(r: OrderedReader, b: number): Generator<[Uint8Array, Uint8Array]> {
  for (const [k, v] of r.range(bucketRange(b))) yield [k.subarray(3), v]
}

/** A copy of `slot`'s mana regenerated to `nowMs` (an absent account: empty, capacity 0). */
function manaOf(slot: Slot<AccountEntry>, nowMs: number): { mana: ManaAccount; gained: number } {
  const mana = slot.value === undefined ? emptyMana(nowMs) : { ...slot.value.mana }
  const gained = regenerate(mana, nowMs)
  return { mana, gained }
}

function setMana(ws: WorkingSet, slot: Slot<AccountEntry>, mana: ManaAccount, gained: number): void {
  slot.value = slot.value === undefined ? { nonce: 0, nonceMask: 0, mana } : { ...slot.value, mana }
  slot.dirty = true
  ws.countRegenerated(gained)
}

/** Use `nonce` of the account in `slot`, or say why not. */
function useNonce(slot: Slot<AccountEntry>, nonce: number, nowMs: number): boolean {
  const a = slot.value ?? { nonce: 0, nonceMask: 0, mana: emptyMana(nowMs) }
  const ahead = nonce - a.nonce
  if (ahead < 0 || ahead >= NONCE_WINDOW || ((a.nonceMask >>> ahead) & 1) === 1) return false
  let mask = (a.nonceMask | (1 << ahead)) >>> 0
  let next = a.nonce
  while ((mask & 1) === 1) {
    mask >>>= 1
    next++
  }
  slot.value = { ...a, nonce: next, nonceMask: mask }
  slot.dirty = true
  return true
}

function sendMana(
  ws: WorkingSet,
  from: Uint8Array,
  to: Uint8Array,
  amount: number,
  nowMs: number,
): RefusalCode | undefined {
  const fromSlot = ws.account(from)
  const src = manaOf(fromSlot, nowMs)
  if (src.mana.balance < amount) return 'LEDGER_TX_INSUFFICIENT_FUNDS'
  if (bytesEqual(from, to)) return undefined
  const toSlot = ws.account(to)
  const dst = manaOf(toSlot, nowMs)
  if (dst.mana.balance + amount > dst.mana.capacity) return 'LEDGER_TX_OVER_CAPACITY'
  src.mana.balance -= amount
  dst.mana.balance += amount
  if (dst.mana.balance === dst.mana.capacity) dst.mana.carry = 0
  setMana(ws, fromSlot, src.mana, src.gained)
  setMana(ws, toSlot, dst.mana, dst.gained)
  return undefined
}

function sendToken(
  ws: WorkingSet,
  token: Uint8Array,
  from: Uint8Array,
  to: Uint8Array,
  amount: number,
): RefusalCode | undefined {
  if (ws.token(token).value === undefined) return 'LEDGER_TX_TOKEN_UNKNOWN'
  const src = ws.balance(token, from)
  const have = src.value ?? 0
  if (have < amount) return 'LEDGER_TX_INSUFFICIENT_FUNDS'
  if (bytesEqual(from, to)) return undefined
  const dst = ws.balance(token, to)
  src.value = have - amount
  src.dirty = true
  dst.value = (dst.value ?? 0) + amount // ≤ the token's supply ≤ MAX_AMOUNT
  dst.dirty = true
  return undefined
}

function issuerToken(ws: WorkingSet, token: Uint8Array, from: Uint8Array): Slot<TokenEntry> | RefusalCode {
  const t = ws.token(token)
  if (t.value === undefined) return 'LEDGER_TX_TOKEN_UNKNOWN'
  if (!bytesEqual(t.value.issuer, from)) return 'LEDGER_TX_NOT_ISSUER'
  return t
}

/** The action of `body` (its nonce already used). */
function act(ws: WorkingSet, body: TxBody, nowMs: number): RefusalCode | undefined {
  switch (body.kind) {
    case 'transfer':
      return body.token === undefined
        ? sendMana(ws, body.from, body.to, body.amount, nowMs)
        : sendToken(ws, body.token, body.from, body.to, body.amount)
    case 'mint': {
      const t = issuerToken(ws, body.token, body.from)
      if (typeof t === 'string') return t
      const token = t.value as TokenEntry
      if (token.supply + body.amount > MAX_AMOUNT) return 'LEDGER_TX_OVERFLOW'
      t.value = { ...token, supply: token.supply + body.amount }
      t.dirty = true
      const dst = ws.balance(body.token, body.to)
      dst.value = (dst.value ?? 0) + body.amount
      dst.dirty = true
      return undefined
    }
    case 'burn': {
      const t = issuerToken(ws, body.token, body.from)
      if (typeof t === 'string') return t
      const src = ws.balance(body.token, body.from)
      if ((src.value ?? 0) < body.amount) return 'LEDGER_TX_INSUFFICIENT_FUNDS'
      const token = t.value as TokenEntry
      t.value = { ...token, supply: token.supply - body.amount }
      t.dirty = true
      src.value = (src.value ?? 0) - body.amount
      src.dirty = true
      return undefined
    }
    case 'token.create': {
      const t = ws.token(tokenId(body.from, body.name))
      if (t.value !== undefined) return 'LEDGER_TX_TOKEN_EXISTS'
      t.value = { issuer: body.from, supply: 0, name: body.name }
      t.dirty = true
      return undefined
    }
    case 'charge': {
      const slot = ws.account(body.from)
      const { mana, gained } = manaOf(slot, nowMs)
      if (mana.balance < body.amount) return 'LEDGER_TX_INSUFFICIENT_FUNDS'
      mana.balance -= body.amount
      setMana(ws, slot, mana, gained)
      ws.count('charged', body.amount)
      return undefined
    }
    case 'mana.configure': {
      const authority = ws.config.manaAuthority
      if (authority === undefined || !bytesEqual(authority, body.from)) return 'LEDGER_TX_NOT_ISSUER'
      const slot = ws.account(body.account)
      const mana = slot.value === undefined ? emptyMana(nowMs) : { ...slot.value.mana }
      const { gained, clipped } = reconfigure(mana, nowMs, body.capacity, body.regenPerSecond)
      setMana(ws, slot, mana, gained)
      ws.count('clipped', clipped)
      return undefined
    }
    case 'committee.propose':
      return propose(ws, body)
    case 'committee.vote':
      return vote(ws, body, nowMs)
  }
}

/**
 * Apply one verified transaction at commit time `nowMs`.
 *
 * @returns undefined when applied, else why it was refused (README.md: what a refusal changes)
 */
export function applyTx(ws: WorkingSet, body: TxBody, nowMs: number): RefusalCode | undefined {
  if (!bytesEqual(body.chain, ws.config.chain)) return 'LEDGER_TX_WRONG_CHAIN'
  if (!useNonce(ws.account(body.from), body.nonce, nowMs)) return 'LEDGER_TX_BAD_NONCE'
  return act(ws, body, nowMs)
}
