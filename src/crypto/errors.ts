/**
 * The crypto area's error codes (docs/ERRORS.md): signatures, keys, HPKE and sealed messages.
 * Pure table: HTTP status, what happened, what to do; its codes join `ErrorCode` below.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

export const CRYPTO_ERRORS = defineErrors({
  SIGNATURE_INVALID: {
    status: 400,
    what: 'a manifest, receipt or record signature does not verify',
    fix: 'do not trust the data; the peer that sent it is banned',
  },
  KEY_INVALID: {
    status: 400,
    what: 'a key file or encoded key is corrupt',
    fix: 'restore the key from backup; a new key means a new identity',
  },
  DECRYPT_FAILED: {
    status: 400,
    what: "a sealed message or HPKE ciphertext does not decrypt with this node's key (tampered, or sealed to another key or recipient)",
    fix: "the message is dropped; the sender should fetch the recipient's current key record and send again",
  },
  KEY_RECORD_INVALID: {
    status: 400,
    what: 'a key record (X-Wing encryption key) is malformed, expired, not yet valid or for another peer',
    fix: "fetch the peer's current key record again; a node publishes a new one when it rotates its key",
  },
  SEALED_MESSAGE_INVALID: {
    status: 400,
    what: 'a sealed message is malformed, too large, for an unknown key, or addressed to another peer',
    fix: "the message is dropped; the sender should use a current client and the recipient's current key record",
  },
  SEALED_MESSAGE_FORGED: {
    status: 400,
    what: "the sender signature inside a sealed message does not verify, or its key is not the named sender's",
    fix: 'the message is dropped: someone tried to impersonate the sender; the relay is not blamed (it cannot see inside)',
  },
  SEALED_MESSAGE_STALE: {
    status: 400,
    what: 'a sealed message was sent longer ago than the accepted age, or too far in the future',
    fix: 'check both clocks (NTP); a message older than the window is dropped',
  },
  SEALED_MESSAGE_REPLAYED: {
    status: 409,
    what: 'a sealed message id was already received within the replay window',
    fix: 'nothing: the copy is dropped, the first delivery counted',
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof CRYPTO_ERRORS> {}
}
