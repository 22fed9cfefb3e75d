/**
 * The ledger transaction envelope: canonical, signed, content-addressed.
 *
 * Bytes: dag-cbor `{ sig, body }` where `body` is a byte string holding the dag-cbor body map and
 * `sig` is the 64-byte Ed25519 signature (RFC 8032, pure) by `body.from` over the signing bytes
 * `dag-cbor({ domain: "nodus/ledger-tx/v1", body })` (the signed-record convention of
 * src/crypto/signed-record.ts: the domain is signed, never sent). Carrying the body as bytes means the
 * signature covers exactly the bytes received, nothing is re-encoded to check it, and since Ed25519
 * signatures (S < L enforced by OpenSSL) are not malleable and the envelope is strict dag-cbor, no one
 * but the signer can make a second byte form (a second id) of a transaction. The id is BLAKE3-256 of
 * the envelope bytes.
 *
 * The body: `{ v: 1, chain, from, nonce, kind, ...fields }`:
 * - `chain`: 32 bytes, the federation's chain id (the hash of its signed genesis file), so a
 *   transaction never replays across federations;
 * - `from`: 32 bytes, the signer's Ed25519 public key: accounts are Ed25519 keys (shown as did:key);
 * - `nonce`: the account's nonce (state.ts: each used once; up to {@link NONCE_WINDOW} ahead of the
 *   account's next nonce, so transactions sent at once may commit in any order);
 * - `kind` and its fields: {@link TxAction}.
 * Amounts are integers in [1, {@link MAX_AMOUNT}] (JavaScript safe integers: exact in every
 * computation here, and dag-cbor integers on the wire). A token id is BLAKE3-256 of
 * `"nodus/ledger-token/v1" ‖ issuer ‖ name` ({@link tokenId}).
 *
 * Two steps, so signatures can be checked in a worker pool (src/crypto/verify-pool.ts):
 * {@link decodeTx} (structure, bounds, id; cheap) gives a {@link DecodedTx} whose `check` is the
 * signature to verify; {@link verifyTx} checks it inline.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { type AbortOptions, throwIfAborted } from '../common/abort.ts'
import { concatBytes } from '../common/bytes.ts'
import { NodusError } from '../common/errors.ts'
import {
  blake3,
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  type Fail,
  failWith,
  readInt,
  readMap,
  readString,
  type SignatureCheck,
  SignatureVerifier,
} from '../crypto/index.ts'
import {
  type CommitteeMember,
  type ConsensusParams,
  MAX_COMMITTEE_TX_BYTES,
  plainMember,
  plainParams,
  readMembers,
  readParams,
} from './committee.ts'

/** The signing domain: signed, never sent; a new envelope version is a new domain. */
export const TX_DOMAIN = 'nodus/ledger-tx/v1'
/** The body version, `body.v`. */
export const TX_VERSION = 1
/** Largest envelope accepted, bytes (a protocol constant: it decides outcomes). */
export const MAX_TX_BYTES = 1024
/** Largest amount, balance and token supply: 2^53 − 1, so every sum stays exact in a JS number. */
export const MAX_AMOUNT = Number.MAX_SAFE_INTEGER
/** Bytes of an account (an Ed25519 public key), a token id and a chain id. */
export const KEY_BYTES = 32
/** How far ahead of an account's next nonce a transaction's nonce may be (a bitmap of used nonces). */
export const NONCE_WINDOW = 32
/** A token name: 1–64 of a-z 0-9 . _ -, starting with a letter or digit. */
export const TOKEN_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/
/** Longest `ref` of a charge (the job, proposal or vote it pays for), bytes. */
export const MAX_CHARGE_REF_BYTES = 64
/** What a charge pays for (later areas: jobs, governance). */
export const CHARGE_PURPOSES = ['job', 'proposal', 'vote'] as const
export type ChargePurpose = (typeof CHARGE_PURPOSES)[number]
const TOKEN_DOMAIN = new TextEncoder().encode('nodus/ledger-token/v1')

/** What a transaction does. `token` absent in a transfer means mana. */
export type TxAction =
  | { kind: 'transfer'; to: Uint8Array; amount: number; token?: Uint8Array }
  /** Issuer only: new tokens to `to`. */
  | { kind: 'mint'; token: Uint8Array; to: Uint8Array; amount: number }
  /** Issuer only: destroys `amount` of the issuer's own balance. */
  | { kind: 'burn'; token: Uint8Array; amount: number }
  /** A token whose issuer is the signer; its id is {@link tokenId}(signer, name). */
  | { kind: 'token.create'; name: string }
  /** Debits `amount` mana from the signer for a job, proposal or vote (`ref`: which one). */
  | { kind: 'charge'; purpose: ChargePurpose; amount: number; ref?: Uint8Array }
  /**
   * The genesis's mana authority only: sets an account's capacity and regeneration (a balance above
   * the new capacity is cut to it). Governance replaces this authority later.
   */
  | { kind: 'mana.configure'; account: Uint8Array; capacity: number; regenPerSecond: number }
  /**
   * A current committee member only: the committee of `epoch` (the current + 1), in index order, and
   * the consensus parameters it changes (committee.ts). Up to {@link MAX_COMMITTEE_TX_BYTES}.
   */
  | { kind: 'committee.propose'; epoch: number; members: CommitteeMember[]; params?: ConsensusParams }
  /** A current committee member only: its vote for the pending proposal `proposal` (32-byte hash) of `epoch`. */
  | { kind: 'committee.vote'; epoch: number; proposal: Uint8Array }

/** The kinds, for checks and docs. */
export const TX_KINDS = [
  'transfer',
  'mint',
  'burn',
  'token.create',
  'charge',
  'mana.configure',
  'committee.propose',
  'committee.vote',
] as const
export type TxKind = TxAction['kind']

/** A transaction's body: who, for which federation, which nonce, and what. */
export type TxBody = { v: 1; chain: Uint8Array; from: Uint8Array; nonce: number } & TxAction

/** A transaction: its body, id (BLAKE3-256 of `bytes`, 32 bytes) and envelope bytes. */
export interface Tx {
  body: TxBody
  id: Uint8Array
  bytes: Uint8Array
}

/** A transaction decoded from untrusted bytes: structure checked, id computed, signature not yet. */
export interface DecodedTx extends Tx {
  /** The Ed25519 signature to verify (inline with {@link verifyTx}, or in a verification pool). */
  check: SignatureCheck
}

/** What a transaction says before it is signed. `from` is the signer's key. */
export type TxInput = { chain: Uint8Array; nonce: number } & TxAction

/** Signs a transaction's signing bytes: an Ed25519 key (`signEd25519`, a libp2p key's `sign`). */
export interface TxSigner {
  /** The Ed25519 public key, 32 bytes: the account. */
  publicKey: Uint8Array
  sign(message: Uint8Array): Uint8Array | Promise<Uint8Array>
}

/** Capacity bound of a mana account (mana.ts): 2^43, so `capacity × 1000` stays exact. */
export const MAX_MANA_CAPACITY = 2 ** 43

const fail: Fail = failWith('LEDGER_TX_INVALID', 'ledger transaction')

const COMMON_KEYS = ['v', 'chain', 'from', 'nonce', 'kind']
const KIND_KEYS: Record<TxKind, { required: readonly string[]; optional: readonly string[] }> = {
  transfer: { required: ['to', 'amount'], optional: ['token'] },
  mint: { required: ['token', 'to', 'amount'], optional: [] },
  burn: { required: ['token', 'amount'], optional: [] },
  'token.create': { required: ['name'], optional: [] },
  charge: { required: ['purpose', 'amount'], optional: ['ref'] },
  'mana.configure': { required: ['account', 'capacity', 'regenPerSecond'], optional: [] },
  'committee.propose': { required: ['epoch', 'members'], optional: ['params'] },
  'committee.vote': { required: ['epoch', 'proposal'], optional: [] },
}

/** The id of the token `name` of `issuer`: BLAKE3-256(`nodus/ledger-token/v1` ‖ issuer ‖ name). */
export function tokenId(issuer: Uint8Array, name: string): Uint8Array {
  return blake3(concatBytes([TOKEN_DOMAIN, issuer, new TextEncoder().encode(name)]))
}

function readKey(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.byteLength !== KEY_BYTES)
    throw fail(`${what} must be ${KEY_BYTES} bytes`)
  return v
}

const readAmount = (v: unknown, what = 'amount'): number => readInt(v, what, 1, MAX_AMOUNT, fail)

function readAction(b: Record<string, unknown>): TxAction {
  const kind = b.kind
  if (typeof kind !== 'string' || !Object.hasOwn(KIND_KEYS, kind))
    throw fail(`kind must be one of ${TX_KINDS.join(', ')}`)
  const keys = KIND_KEYS[kind as TxKind]
  for (const k of Object.keys(b))
    if (!COMMON_KEYS.includes(k) && !keys.required.includes(k) && !keys.optional.includes(k))
      throw fail(`unknown field ${k.slice(0, 32)} for ${kind}`)
  for (const k of keys.required) if (b[k] === undefined) throw fail(`${kind} needs ${k}`)
  switch (kind as TxKind) {
    case 'transfer': {
      const a: TxAction = { kind: 'transfer', to: readKey(b.to, 'to'), amount: readAmount(b.amount) }
      if (b.token !== undefined) a.token = readKey(b.token, 'token')
      return a
    }
    case 'mint':
      return {
        kind: 'mint',
        token: readKey(b.token, 'token'),
        to: readKey(b.to, 'to'),
        amount: readAmount(b.amount),
      }
    case 'burn':
      return { kind: 'burn', token: readKey(b.token, 'token'), amount: readAmount(b.amount) }
    case 'token.create':
      return { kind: 'token.create', name: readString(b.name, 'name', 64, fail, TOKEN_NAME_PATTERN) }
    case 'charge': {
      if (typeof b.purpose !== 'string' || !(CHARGE_PURPOSES as readonly string[]).includes(b.purpose))
        throw fail(`purpose must be one of ${CHARGE_PURPOSES.join(', ')}`)
      const a: TxAction = {
        kind: 'charge',
        purpose: b.purpose as ChargePurpose,
        amount: readAmount(b.amount),
      }
      if (b.ref !== undefined) {
        if (!(b.ref instanceof Uint8Array) || b.ref.byteLength > MAX_CHARGE_REF_BYTES)
          throw fail(`ref must be at most ${MAX_CHARGE_REF_BYTES} bytes`)
        a.ref = b.ref
      }
      return a
    }
    case 'mana.configure':
      return {
        kind: 'mana.configure',
        account: readKey(b.account, 'account'),
        capacity: readInt(b.capacity, 'capacity', 0, MAX_MANA_CAPACITY, fail),
        regenPerSecond: readInt(b.regenPerSecond, 'regenPerSecond', 0, MAX_MANA_CAPACITY, fail),
      }
    case 'committee.propose': {
      const a: TxAction = {
        kind: 'committee.propose',
        epoch: readInt(b.epoch, 'epoch', 1, 2 ** 32 - 1, fail),
        members: readMembers(b.members, fail),
      }
      if (b.params !== undefined) a.params = readParams(b.params, fail)
      return a
    }
    case 'committee.vote':
      return {
        kind: 'committee.vote',
        epoch: readInt(b.epoch, 'epoch', 1, 2 ** 32 - 1, fail),
        proposal: readKey(b.proposal, 'proposal'),
      }
  }
}

/** The body map as signed and sent: optional fields left out when absent. */
function encodeBody(body: TxBody): Record<string, unknown> {
  const m: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(body)) if (v !== undefined) m[k] = v
  if (body.kind === 'committee.propose') {
    m.members = body.members.map(plainMember)
    if (body.params !== undefined) m.params = plainParams(body.params)
  }
  return m
}

/** The bytes a signer signs for a body encoded as `bodyBytes`: dag-cbor of `{ domain, body }`. */
export function txSigningBytes(bodyBytes: Uint8Array): Uint8Array {
  return dagCbor.encode({ domain: TX_DOMAIN, body: bodyBytes })
}

/**
 * Decode a transaction from untrusted bytes: the envelope as strict dag-cbor with exactly `sig` (64
 * bytes) and `body` (bytes), the body as strict dag-cbor, every field typed and bounded, no unknown
 * fields; its id computed. The signature is not checked: pass the result to {@link verifyTx} or a pool.
 * The chain id is not compared here (the ledger refuses another chain's transactions as an outcome).
 *
 * @param bytes - the envelope, at most {@link MAX_TX_BYTES} ({@link MAX_COMMITTEE_TX_BYTES} for a
 *   `committee.propose`)
 * @throws NodusError `LEDGER_TX_INVALID` (peerAction `reject`; `details.reason` names the field)
 */
export function decodeTx(bytes: Uint8Array): DecodedTx {
  if (!(bytes instanceof Uint8Array)) throw fail('not bytes')
  if (bytes.byteLength > MAX_COMMITTEE_TX_BYTES) throw fail(`more than ${MAX_COMMITTEE_TX_BYTES} bytes`)
  let env: unknown
  let raw: unknown
  try {
    env = dagCbor.decode(bytes)
  } catch {
    throw fail('envelope is not dag-cbor')
  }
  const e = readMap(env, 'envelope', ['sig', 'body'], fail)
  const sig = e.sig
  const bodyBytes = e.body
  if (!(sig instanceof Uint8Array) || sig.byteLength !== ED25519_SIGNATURE_BYTES)
    throw fail('sig must be 64 bytes (Ed25519)')
  if (!(bodyBytes instanceof Uint8Array)) throw fail('body must be bytes')
  try {
    raw = dagCbor.decode(bodyBytes)
  } catch {
    throw fail('body is not dag-cbor')
  }
  const b = readMap(raw, 'body', undefined, fail)
  if (b.v !== TX_VERSION) throw fail(`v must be ${TX_VERSION}`)
  const chain = readKey(b.chain, 'chain')
  const from = readKey(b.from, 'from')
  const nonce = readInt(b.nonce, 'nonce', 0, Number.MAX_SAFE_INTEGER, fail)
  const body = { v: TX_VERSION, chain, from, nonce, ...readAction(b) } as TxBody
  if (bytes.byteLength > MAX_TX_BYTES && body.kind !== 'committee.propose')
    throw fail(`more than ${MAX_TX_BYTES} bytes`)
  const check: SignatureCheck = {
    scheme: 'ed25519',
    publicKey: from,
    message: txSigningBytes(bodyBytes),
    signature: sig,
  }
  return { body, id: blake3(bytes), bytes, check }
}

/** The transaction, once its signature is known to verify. @throws `SIGNATURE_INVALID` (ban) when not */
export function verifiedTx(decoded: DecodedTx, valid: boolean): Tx {
  if (!valid)
    throw new NodusError('SIGNATURE_INVALID', 'ledger transaction: signature does not verify', {
      peerAction: 'ban',
      details: { kind: 'ledger transaction' },
    })
  return { body: decoded.body, id: decoded.id, bytes: decoded.bytes }
}

const inlineVerifier = new SignatureVerifier()

/** True when a decoded transaction's signature verifies (on this thread; never throws). */
export function txSignatureValid(decoded: Pick<DecodedTx, 'check'>): boolean {
  return inlineVerifier.verify(decoded.check)
}

/** Verify a decoded transaction's signature here. @throws `SIGNATURE_INVALID` (ban) when it does not */
export function verifyTx(decoded: DecodedTx): Tx {
  return verifiedTx(decoded, txSignatureValid(decoded))
}

/**
 * Sign a transaction and encode its envelope. It is checked as a peer would check it first, so what
 * this returns is what the ledger decodes.
 *
 * @param input - chain id, nonce, kind and fields (`from` is `signer.publicKey`)
 * @throws NodusError `LEDGER_TX_INVALID` (as {@link decodeTx} would refuse it); `ABORTED`
 */
export async function encodeTx(input: TxInput, signer: TxSigner, options: AbortOptions = {}): Promise<Tx> {
  if (!(signer.publicKey instanceof Uint8Array) || signer.publicKey.byteLength !== ED25519_PUBLIC_KEY_BYTES)
    throw fail('the signer must have a 32-byte Ed25519 key')
  let bodyBytes: Uint8Array
  try {
    bodyBytes = dagCbor.encode(encodeBody({ ...input, v: TX_VERSION, from: signer.publicKey } as TxBody))
  } catch (err) {
    throw fail(`cannot encode: ${(err as Error).message}`)
  }
  const envelope = (sig: Uint8Array): Uint8Array => dagCbor.encode({ sig, body: bodyBytes })
  decodeTx(envelope(new Uint8Array(ED25519_SIGNATURE_BYTES)))
  throwIfAborted(options.signal)
  const sig = await signer.sign(txSigningBytes(bodyBytes))
  const d = decodeTx(envelope(sig))
  return { body: d.body, id: d.id, bytes: d.bytes }
}
