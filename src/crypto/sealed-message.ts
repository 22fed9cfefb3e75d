/**
 * Sealed direct messages: a message only its recipient can read, and only the recipient learns who
 * sent it. The payload the messaging area carries (online over its stream protocol, offline at the
 * recipient's mailbox keepers); formats in docs/PROTOCOLS.md, "Sealed messages".
 *
 * - Inside (the HPKE plaintext): a hybrid-signed record (src/crypto/signed-record.ts) of domain
 *   `nodus/sealed-message/v1` whose body is `{ v: 1, from, to, id (16 bytes), sentAt (ms), body
 *   (bytes), mldsa65 (the sender's ML-DSA-65 public key, 1952 bytes) }`. The sender signs `to`, so a
 *   recipient cannot re-seal a message it got to a third node as if the sender had sent it there.
 * - Outside: dag-cbor `{ v: 1, kid, enc, ct }`: the recipient key's id (BLAKE3 of its X-Wing key, 32
 *   bytes), then HPKE base mode with X-Wing (src/crypto/hpke.ts) with `info` = dag-cbor of
 *   `{ domain: "nodus/sealed-message/v1", to, kid, epoch }`, so the ciphertext opens only for that
 *   recipient PeerId and key record, and empty `aad`.
 *
 * Opening checks, in order (cheap first; the signature last but one, so a replay costs no ML-DSA
 * verification and a forgery cannot use up an id): envelope, known key, AEAD, inner record, `to`, body
 * size, freshness, replay window, signature; then the id is remembered.
 *
 * peerAction: everything inside the ciphertext can be checked by the recipient alone, so those errors
 * say `ignore` (a mailbox keeper that relays a message cannot know it is bad); a malformed outer
 * envelope (which any relay can check with {@link decodeSealedEnvelope}) says `reject`. The messaging
 * area, which knows whether the peer that delivered a message is its sender, may hold more against it.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { type AbortOptions, throwIfAborted } from '../common/abort.ts'
import { bytesEqual } from '../common/bytes.ts'
import type { Clock } from '../common/clock.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import type { Random } from '../common/random.ts'
import { HPKE_TAG_BYTES, hpkeOpen, hpkeSeal } from './hpke.ts'
import { MLDSA65_PUBLIC_KEY_BYTES, signHybrid } from './hybrid.ts'
import { checkKeyRecordTime, type KeyRecord } from './key-record.ts'
import type { NodeIdentity } from './keys.ts'
import type { ReplayWindow } from './replay-window.ts'
import { ed25519KeyOf, type Fail, readInt, readMap, readPeerId, SignedRecordCodec } from './signed-record.ts'
import { XWING_CIPHERTEXT_BYTES, type XWingKeyPair } from './xwing.ts'

/** The domain of the inner signature and of the HPKE `info`. */
export const SEALED_MESSAGE_DOMAIN = 'nodus/sealed-message/v1'
/** Format version, inside and outside. */
export const SEALED_MESSAGE_VERSION = 1
/** Bytes in a message id. */
export const MESSAGE_ID_BYTES = 16
/** Bytes in a key id (`kid`). */
export const KEY_ID_BYTES = 32
/**
 * Upper bound of a sealed message's bytes besides its body: envelope, `enc` (1120), tag (16), the
 * signed inner record with the sender's ML-DSA-65 key (1952) and hybrid signature (3373). A message is
 * at most `maxBodyBytes` + this.
 */
export const SEALED_MESSAGE_OVERHEAD_BYTES = 8 * 1024
/** The largest `maxBodyBytes` a limit may set (1 MiB). */
export const MAX_SEALED_BODY_BYTES = 1024 * 1024

/** Bounds of sealed messages. */
export interface SealedMessageLimits {
  /** Largest body, bytes (≤ {@link MAX_SEALED_BODY_BYTES}). */
  maxBodyBytes: number
  /** Oldest `sentAt` accepted, as an age, ms (≥ the mailbox TTL, so stored messages still open). */
  maxAgeMs: number
  /** How far in the future `sentAt` may be (clock skew), ms. */
  maxFutureSkewMs: number
}

/** 64 KiB bodies, 7 days old at most, 5 minutes of clock skew. */
export const DEFAULT_SEALED_MESSAGE_LIMITS: Readonly<SealedMessageLimits> = Object.freeze({
  maxBodyBytes: 64 * 1024,
  maxAgeMs: 7 * 24 * 60 * 60 * 1000,
  maxFutureSkewMs: 5 * 60 * 1000,
})

/**
 * When a replay window may let a message's id go: the first ms at which {@link openMessage} refuses it
 * as stale (`sentAt + maxAgeMs + 1`; at `sentAt + maxAgeMs` it still opens).
 */
export function replayExpiryMs(sentAt: number, limits: Pick<SealedMessageLimits, 'maxAgeMs'>): number {
  return sentAt + limits.maxAgeMs + 1
}

/** The signed inner message. */
interface InnerMessage {
  from: string
  to: string
  id: Uint8Array
  sentAt: number
  body: Uint8Array
  mldsa65: Uint8Array
}

const INNER_KEYS = ['v', 'from', 'to', 'id', 'sentAt', 'body', 'mldsa65'] as const
const OUTER_KEYS = ['v', 'kid', 'enc', 'ct'] as const
const EMPTY = new Uint8Array(0)

function readBytes(v: unknown, what: string, fail: Fail, length?: number, max?: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw fail(`${what} must be bytes`)
  if (length !== undefined && v.byteLength !== length) throw fail(`${what} must be ${length} bytes`)
  if (max !== undefined && v.byteLength > max) throw fail(`${what} is larger than ${max} bytes`)
  return v
}

const INNER = new SignedRecordCodec<InnerMessage, 'hybrid'>({
  kind: 'sealed message',
  code: 'SEALED_MESSAGE_INVALID',
  domain: SEALED_MESSAGE_DOMAIN,
  scheme: 'hybrid',
  maxBytes: MAX_SEALED_BODY_BYTES + SEALED_MESSAGE_OVERHEAD_BYTES,
  encodeBody: (m) => ({
    v: SEALED_MESSAGE_VERSION,
    from: m.from,
    to: m.to,
    id: m.id,
    sentAt: m.sentAt,
    body: m.body,
    mldsa65: m.mldsa65,
  }),
  decodeBody: (b, fail) => {
    readMap(b, 'body', INNER_KEYS, fail)
    readInt(b.v, 'v', SEALED_MESSAGE_VERSION, SEALED_MESSAGE_VERSION, fail)
    const from = readPeerId(b.from, 'from', fail)
    if (ed25519KeyOf(from) === undefined) throw fail('from is not an Ed25519 PeerId')
    return {
      from,
      to: readPeerId(b.to, 'to', fail),
      id: readBytes(b.id, 'id', fail, MESSAGE_ID_BYTES),
      sentAt: readInt(b.sentAt, 'sentAt', 0, Number.MAX_SAFE_INTEGER, fail),
      body: readBytes(b.body, 'body', fail, undefined, MAX_SEALED_BODY_BYTES),
      mldsa65: readBytes(b.mldsa65, 'mldsa65', fail, MLDSA65_PUBLIC_KEY_BYTES),
    }
  },
  signer: (m) => m.from,
  hybridKey: (m) => ({ ed25519: ed25519KeyOf(m.from) ?? EMPTY, mldsa65: m.mldsa65 }),
})

/** The HPKE `info` of a message to `to` under key `kid` of epoch `epoch` (dag-cbor, canonical). */
export function sealedMessageInfo(to: string, kid: Uint8Array, epoch: number): Uint8Array {
  return dagCbor.encode({ domain: SEALED_MESSAGE_DOMAIN, to, kid, epoch })
}

function checkLimits(limits: SealedMessageLimits): void {
  const ok =
    Number.isSafeInteger(limits.maxBodyBytes) &&
    limits.maxBodyBytes >= 0 &&
    limits.maxBodyBytes <= MAX_SEALED_BODY_BYTES &&
    Number.isSafeInteger(limits.maxAgeMs) &&
    limits.maxAgeMs > 0 &&
    Number.isSafeInteger(limits.maxFutureSkewMs) &&
    limits.maxFutureSkewMs >= 0
  if (!ok)
    throw new NodusError('INVALID_ARGUMENT', 'sealed message limits out of bounds', {
      details: { ...limits },
    })
}

/** A message sealed by {@link sealMessage}. */
export interface SealedMessage {
  /** The bytes to send or store: `{ v, kid, enc, ct }`. */
  bytes: Uint8Array
  /** 16 random bytes. */
  id: Uint8Array
  /** ms since the Unix epoch, from the sender's clock. */
  sentAt: number
  /** The recipient PeerId. */
  to: string
}

export interface SealOptions extends AbortOptions {
  clock: Clock
  /** Draws the message id (16 bytes). */
  random: Random
  /** Default {@link DEFAULT_SEALED_MESSAGE_LIMITS}; only `maxBodyBytes` applies when sealing. */
  limits?: SealedMessageLimits
}

/**
 * Seal `body` from `sender` to the node of `recipient` (a key record the caller opened and verified
 * with `openKeyRecord`): signs the inner message (hybrid, the ML-DSA half on the thread pool), then
 * seals it with HPKE/X-Wing to the record's key.
 *
 * @param body - at most `limits.maxBodyBytes` bytes
 * @throws NodusError `INVALID_ARGUMENT` (body too large, bad limits); `KEY_RECORD_INVALID` (the
 *   record is expired or not yet valid on `clock`); `KEY_INVALID`; `ABORTED`
 */
export async function sealMessage(
  sender: NodeIdentity,
  recipient: KeyRecord,
  body: Uint8Array,
  options: SealOptions,
): Promise<SealedMessage> {
  throwIfAborted(options.signal)
  const limits = options.limits ?? DEFAULT_SEALED_MESSAGE_LIMITS
  checkLimits(limits)
  if (!(body instanceof Uint8Array) || body.byteLength > limits.maxBodyBytes) {
    throw new NodusError(
      'INVALID_ARGUMENT',
      `a sealed message body is at most ${limits.maxBodyBytes} bytes`,
      {
        details: { maxBodyBytes: limits.maxBodyBytes },
      },
    )
  }
  const sentAt = options.clock.now()
  checkKeyRecordTime(recipient, { nowMs: sentAt, maxFutureSkewMs: limits.maxFutureSkewMs })
  const id = options.random.bytes(MESSAGE_ID_BYTES)
  const inner: InnerMessage = {
    from: sender.peerId.toString(),
    to: recipient.peer,
    id,
    sentAt,
    body,
    mldsa65: sender.mldsa.publicKey,
  }
  const signed = await INNER.encode(inner, (m) => signHybrid(sender, m, options))
  throwIfAborted(options.signal)
  const info = sealedMessageInfo(recipient.peer, recipient.keyId, recipient.epoch)
  const { enc, ciphertext } = hpkeSeal(recipient.xwing, signed.bytes, { info })
  const bytes = dagCbor.encode({ v: SEALED_MESSAGE_VERSION, kid: recipient.keyId, enc, ct: ciphertext })
  return { bytes, id, sentAt, to: recipient.peer }
}

/** The outer envelope, as a relay can check it. */
export interface SealedEnvelope {
  /** The recipient key's id, 32 bytes. */
  kid: Uint8Array
  /** X-Wing ciphertext, 1120 bytes. */
  enc: Uint8Array
  /** AEAD ciphertext. */
  ct: Uint8Array
}

function envelopeInvalid(message: string): NodusError {
  return new NodusError('SEALED_MESSAGE_INVALID', `sealed message: ${message}`, {
    peerAction: 'reject',
    details: { reason: 'malformed', message },
  })
}

/**
 * Check the outer envelope of a sealed message from untrusted bytes (what a relay or mailbox keeper
 * can check without the recipient's key): size, dag-cbor, exactly `{ v, kid, enc, ct }`, lengths.
 *
 * @throws NodusError `SEALED_MESSAGE_INVALID` (peerAction `reject`, `details.reason` `malformed`)
 */
export function decodeSealedEnvelope(
  bytes: Uint8Array,
  limits: Pick<SealedMessageLimits, 'maxBodyBytes'> = DEFAULT_SEALED_MESSAGE_LIMITS,
): SealedEnvelope {
  const max = limits.maxBodyBytes + SEALED_MESSAGE_OVERHEAD_BYTES
  if (!(bytes instanceof Uint8Array)) throw envelopeInvalid('not bytes')
  if (bytes.byteLength > max) throw envelopeInvalid(`larger than ${max} bytes`)
  let raw: unknown
  try {
    raw = dagCbor.decode(bytes)
  } catch {
    throw envelopeInvalid('not dag-cbor')
  }
  const fail: Fail = (message) => envelopeInvalid(message)
  const env = readMap(raw, 'envelope', OUTER_KEYS, fail)
  readInt(env.v, 'v', SEALED_MESSAGE_VERSION, SEALED_MESSAGE_VERSION, fail)
  return {
    kid: readBytes(env.kid, 'kid', fail, KEY_ID_BYTES),
    enc: readBytes(env.enc, 'enc', fail, XWING_CIPHERTEXT_BYTES),
    ct: readBytes(env.ct, 'ct', fail, undefined, max),
  }
}

/** One of the recipient's X-Wing keys and the epoch of its key record. */
export interface RecipientKey {
  epoch: number
  keyPair: XWingKeyPair
}

/** What a node opens messages with: its PeerId and its live keys (the current one, and the previous while messages sealed to it may still arrive). */
export interface RecipientKeys {
  peerId: string
  keys: readonly RecipientKey[]
}

export interface OpenOptions {
  clock: Clock
  /** When given, a message whose id it holds is refused, and an accepted one is added. */
  replay?: ReplayWindow
  /** Default {@link DEFAULT_SEALED_MESSAGE_LIMITS}. */
  limits?: SealedMessageLimits
}

/** An opened, verified message. */
export interface OpenedMessage {
  /** The sender's PeerId (the signature verified under its key). */
  from: string
  /** This node's PeerId. */
  to: string
  /** 16 bytes. */
  id: Uint8Array
  /** ms since the Unix epoch, by the sender's clock. */
  sentAt: number
  body: Uint8Array
  /** The key id and epoch it was sealed to. */
  kid: Uint8Array
  epoch: number
}

/** An error about the inside of a message: nothing the relay could have known (`ignore`). */
function inner(
  code: 'SEALED_MESSAGE_INVALID' | 'SEALED_MESSAGE_STALE',
  message: string,
  reason: string,
  cause?: unknown,
): NodusError {
  if (code === 'SEALED_MESSAGE_STALE') {
    return new NodusError('SEALED_MESSAGE_STALE', `sealed message: ${message}`, {
      peerAction: 'ignore',
      details: { reason },
    })
  }
  return new NodusError('SEALED_MESSAGE_INVALID', `sealed message: ${message}`, {
    peerAction: 'ignore',
    details: { reason },
    ...(cause === undefined ? {} : { cause }),
  })
}

/**
 * Open a sealed message addressed to `recipient`, with every check in the module doc.
 *
 * @returns the sender, id, time and body
 * @throws NodusError, each with `details.reason`:
 *   `SEALED_MESSAGE_INVALID` (`reject`: malformed envelope; `ignore`: `unknown-key`, `malformed`
 *   inside, `misaddressed` (`to` is not this node), `too-large` body);
 *   `DECRYPT_FAILED` (`ignore`: tampered, or sealed for another recipient PeerId or key record);
 *   `SEALED_MESSAGE_STALE` (`ignore`: `stale`, `future`);
 *   `SEALED_MESSAGE_REPLAYED` (`ignore`: `seen`, `below-floor`);
 *   `SEALED_MESSAGE_FORGED` (`ignore`: the signature does not verify under `from`'s key)
 */
export function openMessage(
  recipient: RecipientKeys,
  bytes: Uint8Array,
  options: OpenOptions,
): OpenedMessage {
  const limits = options.limits ?? DEFAULT_SEALED_MESSAGE_LIMITS
  checkLimits(limits)
  const env = decodeSealedEnvelope(bytes, limits)
  const key = recipient.keys.find((k) => bytesEqual(k.keyPair.keyId, env.kid))
  if (key === undefined)
    throw inner('SEALED_MESSAGE_INVALID', 'sealed to a key this node does not hold', 'unknown-key')
  if (env.ct.byteLength < HPKE_TAG_BYTES) throw envelopeInvalid('ct is shorter than its tag')

  let plaintext: Uint8Array
  try {
    const info = sealedMessageInfo(recipient.peerId, env.kid, key.epoch)
    plaintext = hpkeOpen(key.keyPair, env.enc, env.ct, { info })
  } catch (err) {
    if (!isNodusError(err, 'DECRYPT_FAILED')) throw err
    throw new NodusError('DECRYPT_FAILED', 'sealed message: does not decrypt for this recipient and key', {
      peerAction: 'ignore',
      details: { reason: err.details.reason ?? 'aead' },
      cause: err,
    })
  }

  let record: ReturnType<typeof INNER.decode>
  try {
    record = INNER.decode(plaintext)
  } catch (err) {
    if (!isNodusError(err, 'SEALED_MESSAGE_INVALID')) throw err
    throw inner('SEALED_MESSAGE_INVALID', err.message, 'malformed', err)
  }
  const m = record.value
  if (m.to !== recipient.peerId)
    throw inner('SEALED_MESSAGE_INVALID', 'addressed to another peer', 'misaddressed')
  if (m.body.byteLength > limits.maxBodyBytes)
    throw inner('SEALED_MESSAGE_INVALID', `body larger than ${limits.maxBodyBytes} bytes`, 'too-large')

  const nowMs = options.clock.now()
  if (m.sentAt > nowMs + limits.maxFutureSkewMs)
    throw inner('SEALED_MESSAGE_STALE', 'sent in the future', 'future')
  if (m.sentAt < nowMs - limits.maxAgeMs) throw inner('SEALED_MESSAGE_STALE', 'too old', 'stale')

  const expiresAtMs = replayExpiryMs(m.sentAt, limits)
  const verdict = options.replay?.check(m.id, expiresAtMs, nowMs) ?? 'fresh'
  if (verdict !== 'fresh') {
    throw new NodusError('SEALED_MESSAGE_REPLAYED', 'sealed message: id already received', {
      peerAction: 'ignore',
      details: { reason: verdict },
    })
  }

  try {
    INNER.verify(record)
  } catch (err) {
    if (!isNodusError(err)) throw err
    throw new NodusError('SEALED_MESSAGE_FORGED', 'sealed message: the sender signature does not verify', {
      peerAction: 'ignore',
      details: { reason: 'signature', from: m.from },
      cause: err,
    })
  }
  options.replay?.add(m.id, expiresAtMs, nowMs)
  return { from: m.from, to: m.to, id: m.id, sentAt: m.sentAt, body: m.body, kid: env.kid, epoch: key.epoch }
}
