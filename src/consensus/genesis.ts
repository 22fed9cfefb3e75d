/**
 * The signed genesis file of a federation: its members (the epoch's committee) and the parameters
 * every validator must share, signed by EVERY member (no founder set: nobody is made a validator, and
 * no parameter is set, without that validator's signature), plus an opaque `ledger` section the ledger
 * area reads (a JSON map: initial accounts, tokens, mana parameters).
 *
 * On disk it is JSON (human-readable; byte strings in lower-case hex):
 * `{ "genesis": { version, federation, epoch, createdAtMs, leaderSeed, signatureMode, roundTimeoutMs,
 * maxTxsPerVertex, maxVertexBytes, members: [{ name?, ed25519, mldsa65? }], ledger }, "signatures":
 * [ "<hex>" | { "ed25519": "<hex>", "mldsa65": "<hex>" } | null ] }`, one signature per member, in member
 * order; `null` for a member who has not signed yet (a draft passed around by `nodus genesis sign`,
 * which a node refuses to start with: `GENESIS_INCOMPLETE`).
 * Signatures are over the canonical encoding: dag-cbor of `{ domain: "nodus/consensus-genesis/v1",
 * body }` (the signed-record convention, src/crypto/signed-record.ts), where `body` is the genesis with
 * byte strings as bytes. Ed25519 mode: 64-byte Ed25519 signatures; hybrid mode: hybrid signatures
 * (src/crypto/hybrid.ts). The genesis id is BLAKE3-256 of those signing bytes.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { bytesEqual } from '../common/bytes.ts'
import type { Clock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import type { Random } from '../common/random.ts'
import {
  blake3,
  ED25519_PUBLIC_KEY_BYTES,
  type Fail,
  failWith,
  type HybridSignature,
  MLDSA65_PUBLIC_KEY_BYTES,
  readInt,
  readList,
  readMap,
  readString,
  SignatureVerifier,
  signingBytes,
} from '../crypto/index.ts'
import { Committee, LEADER_SEED_BYTES, type SignatureMode } from './committee.ts'

/** The signing domain of a genesis: signed, never sent. */
export const GENESIS_DOMAIN = 'nodus/consensus-genesis/v1'
/** The genesis format version. */
export const GENESIS_VERSION = 1
/** Most members of one committee. */
export const MAX_MEMBERS = 256
/** Largest dag-cbor encoding of the `ledger` section, bytes. */
export const MAX_LEDGER_SECTION_BYTES = 4 * 1024 * 1024

/** One member as the genesis lists it. */
export interface GenesisMember {
  /** A human label, 1–64 characters. */
  name?: string
  /** Raw Ed25519 public key, 32 bytes. */
  ed25519: Uint8Array
  /** Raw ML-DSA-65 public key, 1952 bytes; required in hybrid mode. */
  mldsa65?: Uint8Array
}

/** What the members sign. */
export interface GenesisBody {
  version: typeof GENESIS_VERSION
  /** The federation's name, 1–64 characters. */
  federation: string
  /** The epoch this committee runs (0 for a new federation). */
  epoch: number
  /** When the genesis was made, Unix ms: the floor of every commit timestamp. */
  createdAtMs: number
  /** 32 bytes: the leader schedule's seed (committee.ts). */
  leaderSeed: Uint8Array
  signatureMode: SignatureMode
  /** How long a validator waits for a round's leader vertex once it holds a quorum of the round, ms (10–600,000). */
  roundTimeoutMs: number
  /** Most transactions in one vertex (0–1,000,000). */
  maxTxsPerVertex: number
  /** Largest signed vertex, bytes (1 KiB–64 MiB). */
  maxVertexBytes: number
  members: GenesisMember[]
  /** Opaque to consensus: the ledger area's initial state and parameters (a JSON map). */
  ledger: Record<string, unknown>
}

/** A member's signature of the genesis: 64 Ed25519 bytes, or a hybrid signature. */
export type GenesisSignature = Uint8Array | HybridSignature

/** A genesis whose every member signature verified. */
export interface Genesis {
  body: GenesisBody
  /** One per member, in member order. */
  signatures: GenesisSignature[]
  /** BLAKE3-256 of the signing bytes, 32 bytes: the genesis id. */
  id: Uint8Array
}

/** The parameters a new genesis gets unless told otherwise. */
export const GENESIS_DEFAULTS = Object.freeze({
  roundTimeoutMs: 500,
  maxTxsPerVertex: 4096,
  maxVertexBytes: 1024 * 1024,
  signatureMode: 'ed25519' as SignatureMode,
})

const fail: Fail = failWith('GENESIS_INVALID', 'genesis')
const BODY_KEYS = [
  'version',
  'federation',
  'epoch',
  'createdAtMs',
  'leaderSeed',
  'signatureMode',
  'roundTimeoutMs',
  'maxTxsPerVertex',
  'maxVertexBytes',
  'members',
  'ledger',
]

function readBytes(v: unknown, what: string, length: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.byteLength !== length) throw fail(`${what} must be ${length} bytes`)
  return v
}

/**
 * Check a genesis body (from a file or built in code): every field typed and bounded, member keys
 * distinct, ML-DSA-65 keys present in hybrid mode, the ledger section a dag-cbor-encodable map.
 *
 * @throws NodusError `GENESIS_INVALID` (`details.reason` names the field)
 */
export function checkGenesisBody(raw: unknown): GenesisBody {
  const b = readMap(raw, 'genesis', BODY_KEYS, fail)
  if (b.version !== GENESIS_VERSION) throw fail(`version must be ${GENESIS_VERSION}`)
  const signatureMode = b.signatureMode
  if (signatureMode !== 'ed25519' && signatureMode !== 'hybrid')
    throw fail('signatureMode must be ed25519 or hybrid')
  const members = readList(b.members, 'members', MAX_MEMBERS, fail).map((m, i): GenesisMember => {
    const r = readMap(m, `members[${i}]`, undefined, fail)
    for (const k of Object.keys(r))
      if (!['name', 'ed25519', 'mldsa65'].includes(k)) throw fail(`members[${i}] has an unknown field`)
    const out: GenesisMember = {
      ed25519: readBytes(r.ed25519, `members[${i}].ed25519`, ED25519_PUBLIC_KEY_BYTES),
    }
    if (r.name !== undefined) out.name = readString(r.name, `members[${i}].name`, 64, fail)
    if (r.mldsa65 !== undefined)
      out.mldsa65 = readBytes(r.mldsa65, `members[${i}].mldsa65`, MLDSA65_PUBLIC_KEY_BYTES)
    else if (signatureMode === 'hybrid') throw fail(`members[${i}].mldsa65 is required in hybrid mode`)
    return out
  })
  if (members.length === 0) throw fail('members must not be empty')
  members.forEach((m, i) => {
    if (members.findIndex((o) => bytesEqual(o.ed25519, m.ed25519)) !== i)
      throw fail(`members[${i}] is listed twice`)
  })
  const ledger = readMap(b.ledger, 'ledger', undefined, fail)
  let ledgerBytes: number
  try {
    ledgerBytes = dagCbor.encode(ledger).byteLength
  } catch {
    throw fail('ledger must be a map of JSON values (no NaN, no undefined)')
  }
  if (ledgerBytes > MAX_LEDGER_SECTION_BYTES) throw fail(`ledger is over ${MAX_LEDGER_SECTION_BYTES} bytes`)
  return {
    version: GENESIS_VERSION,
    federation: readString(b.federation, 'federation', 64, fail),
    epoch: readInt(b.epoch, 'epoch', 0, 2 ** 32 - 1, fail),
    createdAtMs: readInt(b.createdAtMs, 'createdAtMs', 0, 2 ** 48 - 1, fail),
    leaderSeed: readBytes(b.leaderSeed, 'leaderSeed', LEADER_SEED_BYTES),
    signatureMode,
    roundTimeoutMs: readInt(b.roundTimeoutMs, 'roundTimeoutMs', 10, 600_000, fail),
    maxTxsPerVertex: readInt(b.maxTxsPerVertex, 'maxTxsPerVertex', 0, 1_000_000, fail),
    maxVertexBytes: readInt(b.maxVertexBytes, 'maxVertexBytes', 1024, 64 * 1024 * 1024, fail),
    members,
    ledger,
  }
}

/** What {@link newGenesisBody} needs: the members and the ledger section; the rest has defaults. */
export type GenesisInput = Pick<GenesisBody, 'federation' | 'members'> &
  Partial<Omit<GenesisBody, 'version' | 'federation' | 'members' | 'leaderSeed' | 'createdAtMs'>>

/**
 * A new genesis body to pass around for signatures: {@link GENESIS_DEFAULTS} for what `input` leaves
 * out, epoch 0, an empty ledger section, `createdAtMs` from `deps.clock`, a fresh 32-byte leader seed
 * from `deps.random`.
 *
 * @throws NodusError `GENESIS_INVALID` when the result would not verify ({@link checkGenesisBody})
 */
export function newGenesisBody(input: GenesisInput, deps: { clock: Clock; random: Random }): GenesisBody {
  return checkGenesisBody({
    version: GENESIS_VERSION,
    epoch: 0,
    ledger: {},
    ...GENESIS_DEFAULTS,
    ...input,
    createdAtMs: deps.clock.now(),
    leaderSeed: deps.random.bytes(LEADER_SEED_BYTES),
  })
}

/** The body as signed: optional member fields left out when absent. */
function bodyMap(body: GenesisBody): Record<string, unknown> {
  const members = body.members.map((m) => {
    const out: Record<string, unknown> = { ed25519: m.ed25519 }
    if (m.name !== undefined) out.name = m.name
    if (m.mldsa65 !== undefined) out.mldsa65 = m.mldsa65
    return out
  })
  return { ...body, members }
}

/** The bytes every member signs: dag-cbor of `{ domain, body }` (module doc). */
export function genesisSigningBytes(body: GenesisBody): Uint8Array {
  return signingBytes(GENESIS_DOMAIN, bodyMap(body))
}

/** The genesis id of `body`: BLAKE3-256 of its signing bytes, 32 bytes. */
export function genesisId(body: GenesisBody): Uint8Array {
  return blake3(genesisSigningBytes(body))
}

const verifier = new SignatureVerifier(0)

/**
 * Check a genesis: its body ({@link checkGenesisBody}) and one verifying signature per member, in
 * member order (hybrid signatures in hybrid mode).
 *
 * @returns the genesis with its id
 * @throws NodusError `GENESIS_INVALID` on a malformed body, a missing, extra or failing signature
 */
export function verifyGenesis(rawBody: unknown, signatures: readonly GenesisSignature[]): Genesis {
  const body = checkGenesisBody(rawBody)
  if (signatures.length !== body.members.length)
    throw fail(`needs one signature per member: ${body.members.length}, has ${signatures.length}`)
  const message = genesisSigningBytes(body)
  body.members.forEach((_, i) => {
    if (!memberSignatureVerifies(body, message, i, signatures[i]))
      throw fail(`the signature of members[${i}] does not verify`, 'reject', { member: i })
  })
  return { body, signatures: [...signatures], id: blake3(message) }
}

/**
 * Whether `sig` is member `index`'s signature of `message` (the body's {@link genesisSigningBytes}):
 * 64 Ed25519 bytes in ed25519 mode, a hybrid signature in hybrid mode.
 */
export function memberSignatureVerifies(
  body: GenesisBody,
  message: Uint8Array,
  index: number,
  sig: GenesisSignature | null | undefined,
): boolean {
  const m = body.members[index]
  if (m === undefined || sig === null || sig === undefined) return false
  return body.signatureMode === 'ed25519'
    ? sig instanceof Uint8Array &&
        verifier.verify({ scheme: 'ed25519', publicKey: m.ed25519, message, signature: sig })
    : !(sig instanceof Uint8Array) &&
        m.mldsa65 !== undefined &&
        verifier.verify({
          scheme: 'hybrid',
          publicKey: { ed25519: m.ed25519, mldsa65: m.mldsa65 },
          message,
          signature: sig,
        })
}

/** The committee a genesis declares. */
export function committeeOf(genesis: Genesis): Committee {
  const b = genesis.body
  const validators = b.members.map((m, index) => ({
    index,
    ed25519: m.ed25519,
    ...(m.mldsa65 === undefined ? {} : { mldsa65: m.mldsa65 }),
    ...(m.name === undefined ? {} : { name: m.name }),
  }))
  return new Committee(b.epoch, validators, b.leaderSeed, b.signatureMode)
}

// JSON form: byte strings as lower-case hex, everything else as it is.

const HEX = /^(?:[0-9a-f]{2})*$/
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
function unhex(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string' || !HEX.test(v)) throw fail(`${what} must be lower-case hex`)
  return new Uint8Array(Buffer.from(v, 'hex'))
}

/**
 * The genesis file's text (module doc), pretty-printed. A `null` signature (a member who has not
 * signed yet: a draft, src/consensus/genesis-draft.ts) is written as `null`.
 */
export function genesisToJson(genesis: {
  body: GenesisBody
  signatures: readonly (GenesisSignature | null)[]
}): string {
  const b = genesis.body
  const members = b.members.map((m) => ({
    ...(m.name === undefined ? {} : { name: m.name }),
    ed25519: hex(m.ed25519),
    ...(m.mldsa65 === undefined ? {} : { mldsa65: hex(m.mldsa65) }),
  }))
  const signatures = genesis.signatures.map((s) =>
    s === null
      ? null
      : s instanceof Uint8Array
        ? hex(s)
        : { ed25519: hex(s.ed25519), mldsa65: hex(s.mldsa65) },
  )
  const json = { genesis: { ...b, leaderSeed: hex(b.leaderSeed), members }, signatures }
  return `${JSON.stringify(json, null, 2)}\n`
}

/**
 * Parse a genesis file's text ({@link genesisToJson}'s form) without checking its signatures: the
 * checked body and one entry per member, `null` where the member has not signed yet.
 *
 * @throws NodusError `GENESIS_INVALID` on bad JSON, a malformed body or signature, or a signature
 *   list whose length is not the member count
 */
export function readGenesisJson(text: string): {
  body: GenesisBody
  signatures: (GenesisSignature | null)[]
} {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw fail('not JSON')
  }
  const top = readMap(raw, 'genesis file', ['genesis', 'signatures'], fail)
  const g = readMap(top.genesis, 'genesis', undefined, fail)
  const members = readList(g.members, 'members', MAX_MEMBERS, fail).map((m, i) => {
    const r = { ...readMap(m, `members[${i}]`, undefined, fail) }
    r.ed25519 = unhex(r.ed25519, `members[${i}].ed25519`)
    if (r.mldsa65 !== undefined) r.mldsa65 = unhex(r.mldsa65, `members[${i}].mldsa65`)
    return r
  })
  const body = checkGenesisBody({ ...g, leaderSeed: unhex(g.leaderSeed, 'leaderSeed'), members })
  const signatures = readList(top.signatures, 'signatures', MAX_MEMBERS, fail).map((s, i) => {
    if (s === null) return null
    if (typeof s === 'string') return unhex(s, `signatures[${i}]`)
    const r = readMap(s, `signatures[${i}]`, ['ed25519', 'mldsa65'], fail)
    return {
      ed25519: unhex(r.ed25519, `signatures[${i}].ed25519`),
      mldsa65: unhex(r.mldsa65, `signatures[${i}].mldsa65`),
    }
  })
  if (signatures.length !== body.members.length)
    throw fail(
      `needs one signature per member (null where not signed yet): ${body.members.length}, has ${signatures.length}`,
    )
  return { body, signatures }
}

/**
 * Parse and verify a genesis file's text ({@link genesisToJson}'s form): every member must have signed.
 *
 * @throws NodusError `GENESIS_INCOMPLETE` when some members have not signed yet (`details.unsigned`
 *   lists their indexes); `GENESIS_INVALID` on bad JSON, a malformed body or a signature that does
 *   not verify
 */
export function genesisFromJson(text: string): Genesis {
  const { body, signatures } = readGenesisJson(text)
  const unsigned = signatures.flatMap((s, i) => (s === null ? [i] : []))
  if (unsigned.length > 0)
    throw new NodusError(
      'GENESIS_INCOMPLETE',
      `the genesis is not signed by every member yet: ${unsigned.length} of ${body.members.length} have not signed (members ${unsigned.join(', ')}); each runs \`nodus genesis sign FILE\`, \`nodus genesis verify FILE\` lists them`,
      { details: { unsigned, members: body.members.length } },
    )
  return verifyGenesis(body, signatures as GenesisSignature[])
}
