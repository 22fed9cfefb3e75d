/**
 * Typed errors shared by every area.
 *
 * Every error nodus throws on purpose is a {@link NodusError} whose `code` is one of {@link ErrorCode}.
 * Each area declares its codes in `src/<area>/errors.ts` with {@link defineErrors}: the HTTP status, what
 * happened and what to do. src/config/error-table.ts assembles them (the status table the API and the
 * CLI use, and docs/ERRORS.md).
 * Errors caused by a remote peer's input also carry `peerAction` (what peer scoring should do).
 */

/** What to do with a remote peer whose input caused the error. */
export type PeerAction = 'ignore' | 'reject' | 'ban'

/** One error code's entry in its area's table: the HTTP status and the two columns of docs/ERRORS.md. */
export interface ErrorSpec {
  /** HTTP status the API answers with for this code (and the CLI reports). */
  readonly status: number
  /** What happened, as the user sees it. */
  readonly what: string
  /** What the user should do. */
  readonly fix: string
}

/** An area's error codes, by code (SCREAMING_SNAKE_CASE), in docs/ERRORS.md order. */
export type ErrorTable = { readonly [code: string]: ErrorSpec }

/** The codes of a table as an object type, for an area's augmentation of {@link ErrorCodes}. */
export type CodesOf<T extends ErrorTable> = { readonly [K in keyof T]: ErrorSpec }

/** HTTP status of every code declared so far (by {@link defineErrors}, as each errors.ts is loaded). */
const STATUS = new Map<string, number>()

/**
 * Declares an area's error codes. Returns the table, frozen (its codes kept literal, so {@link CodesOf}
 * can name them), and records each code's status for {@link NodusError.status}. The area then adds its
 * codes to {@link ErrorCode}:
 *
 * ```ts
 * export const STORAGE_ERRORS = defineErrors({ CID_INVALID: { status: 400, what: '...', fix: '...' } })
 * declare module '../common/errors.ts' {
 *   interface ErrorCodes extends CodesOf<typeof STORAGE_ERRORS> {}
 * }
 * ```
 *
 * Throws (a plain Error, at load) when a code is already declared by another table.
 */
export function defineErrors<const T extends ErrorTable>(table: T): T {
  for (const [code, spec] of Object.entries(table)) {
    if (STATUS.has(code)) throw new Error(`error code ${code} is declared twice`)
    STATUS.set(code, spec.status)
    Object.freeze(spec)
  }
  return Object.freeze(table)
}

/** Codes any area may raise: bad input, cancellation, time limits, overload, no running node. */
export const COMMON_ERRORS = defineErrors({
  INVALID_ARGUMENT: {
    status: 400,
    what: 'a flag, parameter or request body is wrong',
    fix: 'fix the input as the message says',
  },
  ABORTED: {
    status: 499,
    what: 'the operation was cancelled (client went away, Ctrl-C)',
    fix: 'retry if it was not intended',
  },
  TIMEOUT: {
    status: 504,
    what: 'an operation exceeded its time limit',
    fix: "retry; check the network and the peers' load",
  },
  QUEUE_FULL: {
    status: 503,
    what: 'a bounded queue is full',
    fix: 'retry later; the node is overloaded',
  },
  NOT_STARTED: {
    status: 503,
    what: 'no running node was found (or it failed to start)',
    fix: 'start it with `nodus start --data-dir DIR`; read its log',
  },
})

/**
 * Every error code nodus uses, as the keys of this interface: the common codes here, and each area's
 * from its `src/<area>/errors.ts`, which extends this interface (module augmentation, erased at run
 * time). So {@link ErrorCode} is derived from the tables, and a code no table declares does not compile.
 */
export interface ErrorCodes extends CodesOf<typeof COMMON_ERRORS> {}

/** Every error code nodus uses: the codes of every area's error table. */
export type ErrorCode = keyof ErrorCodes & string

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

  /**
   * HTTP status for this error's code, from its area's table. Known once that area's errors.ts is
   * loaded: src/config/index.ts loads every area's (the API server and the CLI client import it).
   * Throws a plain Error for a code whose table is not loaded.
   */
  get status(): number {
    const status = STATUS.get(this.code)
    if (status === undefined)
      throw new Error(
        `no HTTP status for ${this.code}: its area's errors.ts is not loaded (see config/index.ts)`,
      )
    return status
  }

  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details }
  }
}

/** True when `err` is a NodusError, optionally with the given code. */
export function isNodusError(err: unknown, code?: ErrorCode): err is NodusError {
  return err instanceof NodusError && (code === undefined || err.code === code)
}
