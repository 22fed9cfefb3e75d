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

/** What the sealed-database routes use. */
export interface KvSealedRoutesDeps {
  kv: { engine: Pick<KvEngine, 'reader'> }
  /** The key record of `peer` (verified). @throws NodusError as the messaging area's lookup does */
  keyRecord(peer: string, signal: AbortSignal): Promise<KeyRecord>
}

/** Most shares one answer lists. */
export const MAX_SHARES_PER_READ = 1024

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
        const reader = deps.kv.engine.reader
        const shares = sharesFor(reader, db, new Uint8Array(Buffer.from(kid, 'hex')), MAX_SHARES_PER_READ)
        return {
          db,
          sealed: new AuthState(reader).db(db)?.sealed === true,
          shares: shares.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')),
        }
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
      async (req) => {
        const k = await deps.keyRecord(req.params.peer, AbortSignal.timeout(30_000))
        return {
          peer: k.peer,
          keyId: Buffer.from(k.keyId).toString('hex'),
          epoch: k.epoch,
          xwing: Buffer.from(k.xwing).toString('base64'),
          notBefore: k.notBefore,
          notAfter: k.notAfter,
        }
      },
    )
  }
}
