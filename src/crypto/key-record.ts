/**
 * The key record: a node's X-Wing encapsulation key (src/crypto/xwing.ts), hybrid-signed by the node
 * (Ed25519 + ML-DSA-65), valid from `notBefore` to `notAfter` and numbered by `epoch` (the node
 * rotates its key on a schedule and publishes the new record). Senders seal direct messages to it
 * (src/crypto/sealed-message.ts). A signed record type (src/crypto/signed-record.ts):
 *
 * - domain `nodus/key-record/v1`, scheme `hybrid`, code `KEY_RECORD_INVALID`, at most 8 KiB;
 * - body (dag-cbor, exactly these keys): `peer` (the node's Ed25519 PeerId, string), `xwing` (1216
 *   bytes), `epoch` (integer 0 … 2^32 − 1), `notBefore`, `notAfter` (ms since the Unix epoch,
 *   `notBefore < notAfter ≤ notBefore + 90 days`), `mldsa65` (the node's ML-DSA-65 public key, 1952
 *   bytes; the Ed25519 half of the hybrid key is the one inside `peer`).
 *
 * Publishing it (in the DHT) and rotating it belong to the messaging area.
 */
import { type AbortOptions, throwIfAborted } from '../common/abort.ts'
import { NodusError } from '../common/errors.ts'
import { MLDSA65_PUBLIC_KEY_BYTES, signHybrid } from './hybrid.ts'
import type { NodeIdentity } from './keys.ts'
import {
  type DecodedRecord,
  type EncodedRecord,
  ed25519KeyOf,
  type Fail,
  readInt,
  readMap,
  readPeerId,
  SignedRecordCodec,
} from './signed-record.ts'
import { parseXWingPublicKey, XWING_PUBLIC_KEY_BYTES, type XWingKeyPair, xwingKeyId } from './xwing.ts'

/** Signed, never sent: separates key-record signatures from every other type's. */
export const KEY_RECORD_DOMAIN = 'nodus/key-record/v1'
/** Largest encoded key record accepted, bytes (one is about 6.6 KB). */
export const KEY_RECORD_MAX_BYTES = 8 * 1024
/** Longest validity of one record, `notAfter − notBefore`, ms (90 days). */
export const MAX_KEY_RECORD_LIFETIME_MS = 90 * 24 * 60 * 60 * 1000
/** Largest epoch. */
export const MAX_KEY_EPOCH = 2 ** 32 - 1
/** How far ahead of the reader's clock `notBefore` may be, by default (clock skew), ms. */
export const DEFAULT_KEY_RECORD_SKEW_MS = 5 * 60 * 1000

/** A node's published encryption key. */
export interface KeyRecord {
  /** The node's PeerId (Ed25519), string. */
  peer: string
  /** X-Wing encapsulation key, 1216 bytes. */
  xwing: Uint8Array
  /** `xwingKeyId(xwing)`: 32 bytes; derived, not in the body. Sealed messages name the key by it. */
  keyId: Uint8Array
  /** Rotation counter, 0 … 2^32 − 1. */
  epoch: number
  /** Valid from, ms since the Unix epoch (inclusive). */
  notBefore: number
  /** Valid until, ms since the Unix epoch (exclusive). */
  notAfter: number
  /** The node's ML-DSA-65 public key, 1952 bytes (verifies the ML-DSA half of the signature). */
  mldsa65: Uint8Array
}

const KEYS = ['peer', 'xwing', 'epoch', 'notBefore', 'notAfter', 'mldsa65'] as const
const EMPTY = new Uint8Array(0)

function readBytes(v: unknown, what: string, length: number, fail: Fail): Uint8Array {
  if (!(v instanceof Uint8Array) || v.byteLength !== length) throw fail(`${what} must be ${length} bytes`)
  return v
}

function decodeKeyRecordBody(body: Record<string, unknown>, fail: Fail): KeyRecord {
  readMap(body, 'body', KEYS, fail)
  const peer = readPeerId(body.peer, 'peer', fail)
  if (ed25519KeyOf(peer) === undefined) throw fail('peer is not an Ed25519 PeerId')
  const xwing = readBytes(body.xwing, 'xwing', XWING_PUBLIC_KEY_BYTES, fail)
  try {
    parseXWingPublicKey(xwing)
  } catch {
    throw fail('xwing is not a usable X-Wing key (ML-KEM modulus check or X25519 point)')
  }
  const epoch = readInt(body.epoch, 'epoch', 0, MAX_KEY_EPOCH, fail)
  const notBefore = readInt(body.notBefore, 'notBefore', 0, Number.MAX_SAFE_INTEGER, fail)
  const notAfter = readInt(
    body.notAfter,
    'notAfter',
    notBefore + 1,
    Math.min(Number.MAX_SAFE_INTEGER, notBefore + MAX_KEY_RECORD_LIFETIME_MS),
    fail,
  )
  const mldsa65 = readBytes(body.mldsa65, 'mldsa65', MLDSA65_PUBLIC_KEY_BYTES, fail)
  return { peer, xwing, keyId: xwingKeyId(xwing), epoch, notBefore, notAfter, mldsa65 }
}

/** The key record codec (encode, decode, verify); see the module doc for the body. */
export const KEY_RECORD = new SignedRecordCodec<KeyRecord, 'hybrid'>({
  kind: 'key record',
  code: 'KEY_RECORD_INVALID',
  domain: KEY_RECORD_DOMAIN,
  scheme: 'hybrid',
  maxBytes: KEY_RECORD_MAX_BYTES,
  encodeBody: (r) => ({
    peer: r.peer,
    xwing: r.xwing,
    epoch: r.epoch,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    mldsa65: r.mldsa65,
  }),
  decodeBody: decodeKeyRecordBody,
  signer: (r) => r.peer,
  hybridKey: (r) => ({ ed25519: ed25519KeyOf(r.peer) ?? EMPTY, mldsa65: r.mldsa65 }),
})

/** Validity of a key record. */
export interface KeyRecordTimes {
  /** Valid from, ms since the Unix epoch. */
  notBefore: number
  /** Valid until (exclusive), ms; at most {@link MAX_KEY_RECORD_LIFETIME_MS} after `notBefore`. */
  notAfter: number
  /** Rotation counter. */
  epoch: number
}

/**
 * Build and hybrid-sign the key record of `identity` for `keyPair`.
 *
 * @returns the record: `bytes` to publish, `value` (with `keyId`)
 * @throws NodusError `INVALID_ARGUMENT` when the times or epoch are out of bounds; `ABORTED`
 */
export async function createKeyRecord(
  identity: NodeIdentity,
  keyPair: XWingKeyPair,
  times: KeyRecordTimes,
  options: AbortOptions = {},
): Promise<EncodedRecord<KeyRecord, 'hybrid'>> {
  throwIfAborted(options.signal)
  const value: KeyRecord = {
    peer: identity.peerId.toString(),
    xwing: keyPair.publicKey,
    keyId: keyPair.keyId,
    epoch: times.epoch,
    notBefore: times.notBefore,
    notAfter: times.notAfter,
    mldsa65: identity.mldsa.publicKey,
  }
  return KEY_RECORD.signAs(value, identity.peerId, (m) => signHybrid(identity, m, options))
}

/** What {@link checkKeyRecordTime} and {@link openKeyRecord} compare against. */
export interface KeyRecordCheck {
  /** Now, ms since the Unix epoch (from the injected clock). */
  nowMs: number
  /** How far `notBefore` may be ahead of `nowMs`, ms; default {@link DEFAULT_KEY_RECORD_SKEW_MS}. */
  maxFutureSkewMs?: number
}

/**
 * Whether `record` is valid at `check.nowMs`: `notBefore − skew ≤ now < notAfter`.
 *
 * @throws NodusError `KEY_RECORD_INVALID` (peerAction `ignore`: a stale copy is nobody's fault;
 *   `details.reason` `expired` or `not-yet-valid`)
 */
export function checkKeyRecordTime(record: KeyRecord, check: KeyRecordCheck): void {
  const skew = check.maxFutureSkewMs ?? DEFAULT_KEY_RECORD_SKEW_MS
  if (check.nowMs >= record.notAfter) {
    throw new NodusError('KEY_RECORD_INVALID', 'key record: expired', {
      peerAction: 'ignore',
      details: { reason: 'expired', peer: record.peer, epoch: record.epoch, notAfter: record.notAfter },
    })
  }
  if (record.notBefore > check.nowMs + skew) {
    throw new NodusError('KEY_RECORD_INVALID', 'key record: not yet valid', {
      peerAction: 'ignore',
      details: {
        reason: 'not-yet-valid',
        peer: record.peer,
        epoch: record.epoch,
        notBefore: record.notBefore,
      },
    })
  }
}

/**
 * Decode a key record from untrusted bytes and check it: structure and key (reject), the peer it
 * should be for (reject), its validity at `now` (ignore), then the hybrid signature (ban): cheap and
 * blameless checks first, as the signed-record inbox orders them.
 *
 * @param options.peer - the PeerId the record must be for (the DHT key it was found under), if known
 * @throws NodusError `KEY_RECORD_INVALID` (`reject` malformed or for another peer; `ignore` expired
 *   or not yet valid); `SIGNATURE_INVALID` (`ban`)
 */
export function openKeyRecord(
  bytes: Uint8Array,
  options: KeyRecordCheck & { peer?: string },
): DecodedRecord<KeyRecord, 'hybrid'> {
  const record = KEY_RECORD.decode(bytes)
  if (options.peer !== undefined && record.value.peer !== options.peer) {
    throw new NodusError('KEY_RECORD_INVALID', 'key record: for another peer', {
      peerAction: 'reject',
      details: { reason: 'other-peer', peer: record.value.peer.slice(0, 128), expected: options.peer },
    })
  }
  checkKeyRecordTime(record.value, options)
  KEY_RECORD.verify(record)
  return record
}
