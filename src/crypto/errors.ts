/**
 * The crypto area's error codes (docs/ERRORS.md): signatures and keys.
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
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof CRYPTO_ERRORS> {}
}
