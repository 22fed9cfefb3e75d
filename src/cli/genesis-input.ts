/**
 * What `nodus genesis init` reads from its flags: members (their public keys, as `nodus id --json`
 * hands them over) and ledger accounts.
 */
import { readFile } from 'node:fs/promises'
import { NodusError } from '../common/errors.ts'
import type { GenesisMember } from '../consensus/index.ts'
import {
  didKeyFromEd25519,
  ED25519_PUBLIC_KEY_BYTES,
  MLDSA65_PUBLIC_KEY_BYTES,
  type NodeIdentity,
} from '../crypto/index.ts'
import { hexBytes, parseWriterKey } from './kv-writer.ts'

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
const NAME = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})=(.+)$/s
const bad = (message: string): NodusError => new NodusError('INVALID_ARGUMENT', message)

/**
 * What `nodus id --json` prints, and what a member hands over to be put in a genesis (`--member FILE`
 * reads it back): `{ peerId, did, ed25519: 64 hex, mldsa65: 3,904 hex }`. Public keys only.
 */
export function publicKeysOf(id: NodeIdentity): {
  peerId: string
  did: string
  ed25519: string
  mldsa65: string
} {
  const ed25519 = id.ed25519.publicKey.raw
  return {
    peerId: id.peerId.toString(),
    did: didKeyFromEd25519(ed25519),
    ed25519: hex(ed25519),
    mldsa65: hex(id.mldsa.publicKey),
  }
}

/** An Ed25519 public key (32 bytes) from a did:key, `z6Mk…`, an Ed25519 PeerId or 64 hex digits. */
export function ed25519KeyOf(text: string, what: string): Uint8Array {
  const key = parseWriterKey(text)
  if (key.byteLength !== ED25519_PUBLIC_KEY_BYTES)
    throw bad(`${what} must be an Ed25519 key (did:key, PeerId or 64 hex digits)`)
  return key
}

function keysOf(text: string): Omit<GenesisMember, 'name'> {
  const key = parseWriterKey(text)
  if (key.byteLength === ED25519_PUBLIC_KEY_BYTES) return { ed25519: key }
  return {
    ed25519: key.subarray(0, ED25519_PUBLIC_KEY_BYTES),
    mldsa65: key.subarray(ED25519_PUBLIC_KEY_BYTES),
  }
}

/** The keys in a file holding `nodus id --json`'s output. */
async function keysFromFile(path: string, what: string): Promise<Omit<GenesisMember, 'name'>> {
  let raw: unknown
  try {
    raw = JSON.parse(await readFile(path, 'utf8'))
  } catch (err) {
    throw new NodusError(
      'INVALID_ARGUMENT',
      `${what}: not a key (did:key, PeerId, hex) nor a readable \`nodus id --json\` file: ${path}`,
      { cause: err },
    )
  }
  const r = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
  const id = [r.ed25519, r.did, r.peerId].find((v) => typeof v === 'string') as string | undefined
  if (id === undefined) throw bad(`${what}: ${path} has no ed25519, did or peerId field`)
  const ed25519 = ed25519KeyOf(id, what)
  if (typeof r.mldsa65 !== 'string') return { ed25519 }
  return { ed25519, mldsa65: hexBytes(r.mldsa65, `${what}'s mldsa65`, [MLDSA65_PUBLIC_KEY_BYTES]) }
}

/**
 * A member from `--member [NAME=]KEY`: KEY is a did:key, `z6Mk…`, an Ed25519 PeerId, 64 hex digits
 * (Ed25519), 3,968 hex digits (Ed25519 ‖ ML-DSA-65, as `nodus kv key --hybrid` prints), or a file
 * holding `nodus id --json`'s output (both keys). NAME, 1–64 of `A-Za-z0-9._-`, labels the member.
 * @throws NodusError `INVALID_ARGUMENT`
 */
export async function parseMember(spec: string, index: number): Promise<GenesisMember> {
  const what = `--member ${index + 1}`
  const named = NAME.exec(spec)
  const name = named?.[1]
  const value = named?.[2] ?? spec
  let keys: Omit<GenesisMember, 'name'>
  try {
    keys = keysOf(value)
  } catch {
    keys = await keysFromFile(value, what)
  }
  return { ...(name === undefined ? {} : { name }), ...keys }
}

/** Defaults of `--account ID=BALANCE[,capacity=N][,regen=N]`. */
export const ACCOUNT_DEFAULTS = Object.freeze({ capacity: 10_000_000, regenPerSecond: 1_000 })

function whole(text: string | undefined, what: string): number {
  const n = Number(text)
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(n))
    throw bad(`${what} must be a whole number, got ${String(text)}`)
  return n
}

/**
 * An account of the ledger section from `--account ID=BALANCE[,capacity=N][,regen=N]` (ID: an Ed25519
 * key as {@link ed25519KeyOf} reads it; capacity default 10,000,000 or BALANCE if larger; regen, mana
 * per second, default 1,000). The ledger checks the bounds when the genesis is built.
 * @returns the section's JSON form of the account (src/ledger/section.ts)
 * @throws NodusError `INVALID_ARGUMENT`
 */
export function parseAccount(spec: string): Record<string, unknown> {
  const eq = spec.indexOf('=')
  if (eq < 0) throw bad(`--account ${spec}: expected ID=BALANCE[,capacity=N][,regen=N]`)
  const account = ed25519KeyOf(spec.slice(0, eq), `--account ${spec.slice(0, 16)}…`)
  const [amount, ...opts] = spec.slice(eq + 1).split(',')
  const balance = whole(amount, 'an --account balance')
  let capacity = Math.max(balance, ACCOUNT_DEFAULTS.capacity)
  let regenPerSecond: number = ACCOUNT_DEFAULTS.regenPerSecond
  for (const o of opts) {
    const [k, v] = o.split('=')
    if (k === 'capacity') capacity = whole(v, 'an --account capacity')
    else if (k === 'regen') regenPerSecond = whole(v, 'an --account regen')
    else throw bad(`--account: unknown option ${o} (capacity=N, regen=N)`)
  }
  return { account: hex(account), balance, capacity, regenPerSecond }
}
