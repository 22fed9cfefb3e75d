/**
 * The HTTP routes of private (sealed) databases (sealed.ts, sealed-share.ts; docs/API.md):
 * - `GET /kv/:db/shares/:kid` → `{ db, sealed, shares: [base64 envelope] }`: whether the database is
 *   private (a held create says `sealed: true`) and the held `share` operations sealed to the X-Wing
 *   key `kid` (64 hex characters), as signed envelopes: the reader checks each one's signature and
 *   signer itself (`keyringFromShares`), so a host cannot hand it a key of its own. Open: shares are
 *   ciphertext every host holds.
 * - `GET /kv/reader-key/:peer` → `{ peer, keyId (hex), epoch, xwing (base64), notBefore, notAfter }`:
 *   the key record of `peer` (this node's own, or one the messaging area found and verified:
 *   src/messaging/key-directory.ts), to seal a share to. The caller trusts this node for the lookup,
 *   as `nodus direct send` does.
 */
import type { ApiRoutes } from '../api/index.ts'
import type { KeyRecord } from '../crypto/index.ts'
import { AuthState, sharesFor } from './auth-store.ts'
import type { KvEngine } from './engine.ts'
import type { OrderedReader } from './store/ordered.ts'

/** What the sealed-database routes use. */
export interface KvSealedRoutesDeps {
  kv: { engine: Pick<KvEngine, 'reader'> }
  /** The key record of `peer` (verified). @throws NodusError as the messaging area's lookup does */
  keyRecord(peer: string, signal: AbortSignal): Promise<KeyRecord>
}

/** Most shares one answer lists. */
export const MAX_SHARES_PER_READ = 1024

/** Time a key record lookup may take, ms. */
export const READER_KEY_TIMEOUT_MS = 30_000

/** What `GET /kv/:db/shares/:kid` and the GraphQL `shares` query answer. */
export interface DbSharesAnswer {
  db: string
  /** Whether a held create says `sealed: true`. */
  sealed: boolean
  /** The held `share` operations sealed to `kid`: signed envelopes, base64; at most `max`. */
  shares: string[]
}

/**
 * Whether `db` is private and the held shares sealed to the X-Wing key `kid` (32 bytes).
 * @param max - most shares listed
 */
export function dbShares(reader: OrderedReader, db: string, kid: Uint8Array, max: number): DbSharesAnswer {
  const shares = sharesFor(reader, db, kid, max)
  return {
    db,
    sealed: new AuthState(reader).db(db)?.sealed === true,
    shares: shares.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')),
  }
}

/** What `GET /kv/reader-key/:peer` and the GraphQL `readerKey` query answer: a key record's public part. */
export interface ReaderKeyAnswer {
  peer: string
  /** X-Wing key id, 64 hex characters. */
  keyId: string
  epoch: number
  /** X-Wing encapsulation key (1,216 bytes), base64. */
  xwing: string
  /** Unix ms, inclusive. */
  notBefore: number
  /** Unix ms, exclusive. */
  notAfter: number
}

/** The answer of a key record. */
export function readerKeyAnswer(k: KeyRecord): ReaderKeyAnswer {
  return {
    peer: k.peer,
    keyId: Buffer.from(k.keyId).toString('hex'),
    epoch: k.epoch,
    xwing: Buffer.from(k.xwing).toString('base64'),
    notBefore: k.notBefore,
    notAfter: k.notAfter,
  }
}

/** The routes, as a plugin for createApiServer. */
export function kvSealedRoutes(deps: KvSealedRoutesDeps): ApiRoutes {
  return (r) => {
    r.get<{ Params: { db: string; kid: string } }>(
      '/kv/:db/shares/:kid',
      {
        schema: {
          tags: ['kv'],
          summary: 'A private database’s key shares sealed to one X-Wing key (signed envelopes, base64)',
          params: {
            type: 'object',
            properties: {
              db: { type: 'string', minLength: 1, maxLength: 128 },
              kid: { type: 'string', pattern: '^[0-9a-f]{64}$' },
            },
            required: ['db', 'kid'],
          },
        },
      },
      async (req) => {
        const { db, kid } = req.params
        const bytes = new Uint8Array(Buffer.from(kid, 'hex'))
        return dbShares(deps.kv.engine.reader, db, bytes, MAX_SHARES_PER_READ)
      },
    )
    r.get<{ Params: { peer: string } }>(
      '/kv/reader-key/:peer',
      {
        schema: {
          tags: ['kv'],
          summary:
            'A node’s X-Wing key record (from the DHT or the node itself), to share a private database’s key with it',
          params: {
            type: 'object',
            properties: { peer: { type: 'string', minLength: 1, maxLength: 128 } },
            required: ['peer'],
          },
        },
      },
      async (req) =>
        readerKeyAnswer(await deps.keyRecord(req.params.peer, AbortSignal.timeout(READER_KEY_TIMEOUT_MS))),
    )
  }
}
