/**
 * Typed errors shared by every area.
 *
 * Every error nodus throws on purpose is a {@link NodusError} whose `code` is one of {@link ErrorCode}.
 * Codes map to HTTP statuses in {@link HTTP_STATUS}; docs/ERRORS.md says what a user should do.
 * Errors caused by a remote peer's input also carry `peerAction` (what peer scoring should do).
 */

/** What to do with a remote peer whose input caused the error. */
export type PeerAction = 'ignore' | 'reject' | 'ban'

/** Every error code nodus uses, grouped by area. */
export type ErrorCode =
  // common
  | 'INVALID_ARGUMENT'
  | 'ABORTED'
  | 'TIMEOUT'
  | 'QUEUE_FULL'
  | 'NOT_STARTED'
  // config / cli
  | 'CONFIG_INVALID'
  | 'KEYS_EXIST'
  | 'KEYS_MISSING'
  | 'PORT_IN_USE'
  | 'FILE_NOT_FOUND'
  | 'NODE_UNREACHABLE'
  // crypto
  | 'SIGNATURE_INVALID'
  | 'KEY_INVALID'
  // storage
  | 'CID_INVALID'
  | 'CID_MISMATCH'
  | 'SHARD_MISSING'
  | 'SHARD_TOO_LARGE'
  | 'STORE_FULL'
  | 'STORE_CLOSED'
  | 'ERASURE_INVALID'
  | 'DECODE_FAILED'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_NOT_FOUND'
  | 'NOT_ENOUGH_PEERS'
  | 'ORDER_INVALID'
  | 'QUOTA_EXCEEDED'
  // net
  | 'PROTOCOL_ERROR'
  | 'MESSAGE_TOO_LARGE'
  | 'PEER_BUSY'
  | 'PEER_UNREACHABLE'
  | 'PEER_BANNED'
  | 'STREAM_CLOSED'
  | 'BULK_UNAVAILABLE'
  // trust
  | 'TRUST_VECTOR_INVALID'
  | 'CAPACITY_REPORT_INVALID'
  | 'RATE_LIMITED'
  | 'NOT_AUTHORIZED'
  | 'REVISION_INVALID'

/** HTTP status for each code, used by the API and by CLI exit messages. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  INVALID_ARGUMENT: 400,
  ABORTED: 499,
  TIMEOUT: 504,
  QUEUE_FULL: 503,
  NOT_STARTED: 503,
  CONFIG_INVALID: 400,
  KEYS_EXIST: 409,
  KEYS_MISSING: 400,
  PORT_IN_USE: 409,
  FILE_NOT_FOUND: 404,
  NODE_UNREACHABLE: 503,
  SIGNATURE_INVALID: 400,
  KEY_INVALID: 400,
  CID_INVALID: 400,
  CID_MISMATCH: 502,
  SHARD_MISSING: 404,
  SHARD_TOO_LARGE: 413,
  STORE_FULL: 507,
  STORE_CLOSED: 503,
  ERASURE_INVALID: 400,
  DECODE_FAILED: 502,
  MANIFEST_INVALID: 400,
  MANIFEST_NOT_FOUND: 404,
  NOT_ENOUGH_PEERS: 503,
  ORDER_INVALID: 403,
  QUOTA_EXCEEDED: 507,
  PROTOCOL_ERROR: 502,
  MESSAGE_TOO_LARGE: 413,
  PEER_BUSY: 503,
  PEER_UNREACHABLE: 502,
  PEER_BANNED: 403,
  STREAM_CLOSED: 502,
  BULK_UNAVAILABLE: 502,
  TRUST_VECTOR_INVALID: 400,
  CAPACITY_REPORT_INVALID: 400,
  RATE_LIMITED: 429,
  NOT_AUTHORIZED: 403,
  REVISION_INVALID: 409,
})

export interface NodusErrorOptions {
  /** Structured details (cid, index, peer, ...) for logs and API bodies. Never secrets. */
  details?: Record<string, unknown>
  /** Set when a remote peer's input caused the error. */
  peerAction?: PeerAction
  cause?: unknown
}

/** The one error class nodus throws on purpose. Test with `isNodusError(err, 'CODE')`. */
export class NodusError extends Error {
  readonly code: ErrorCode
  readonly details: Record<string, unknown>
  readonly peerAction: PeerAction | undefined

  constructor(code: ErrorCode, message: string, options: NodusErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'NodusError'
    this.code = code
    this.details = options.details ?? {}
    this.peerAction = options.peerAction
  }

  /** HTTP status for this error's code. */
  get status(): number {
    return HTTP_STATUS[this.code]
  }

  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details }
  }
}

/** True when `err` is a NodusError, optionally with the given code. */
export function isNodusError(err: unknown, code?: ErrorCode): err is NodusError {
  return err instanceof NodusError && (code === undefined || err.code === code)
}
