/**
 * The GraphQL reads of private (sealed) databases (graphql-schema.ts), mirroring the HTTP routes of
 * sealed-routes.ts:
 * - `shares(db, kid)` → `DbShares { db, sealed, shares }`, as `GET /kv/:db/shares/:kid`: whether the
 *   database is private and the held `share` operations sealed to the X-Wing key `kid` (64 hex
 *   characters), signed envelopes in base64 that the reader verifies itself (sealed-share.ts
 *   `keyringFromShares`); at most `kv.graphqlMaxElements` (and 1,024) of them.
 * - `readerKey(peer)` → `ReaderKey`, as `GET /kv/reader-key/:peer`: a node's X-Wing key record (this
 *   node's own, or one the messaging area found and verified), to seal a share to. The caller trusts
 *   this node for the lookup. Errors as the lookup's (`KEY_RECORD_NOT_FOUND`, `TIMEOUT` after 30 s, …).
 */
import { NodusError } from '../common/errors.ts'
import type { KvEngine } from './engine.ts'
import {
  dbShares,
  type KvSealedRoutesDeps,
  MAX_SHARES_PER_READ,
  READER_KEY_TIMEOUT_MS,
  readerKeyAnswer,
} from './sealed-routes.ts'

/** What the sealed reads use. */
export interface KvSealedReadsDeps {
  kv: { engine: Pick<KvEngine, 'reader'> }
  keyRecord: KvSealedRoutesDeps['keyRecord']
}

const KID = /^[0-9a-f]{64}$/

/**
 * The resolvers of `Query.shares` and `Query.readerKey`.
 * @param options.maxElements - most shares one answer lists (`kv.graphqlMaxElements`)
 * @throws NodusError `INVALID_ARGUMENT` for a `kid` that is not 64 hex characters or a `peer` over 128
 */
export function kvSealedResolvers(deps: KvSealedReadsDeps, options: { maxElements: number }) {
  const max = Math.min(options.maxElements, MAX_SHARES_PER_READ)
  return {
    shares: (_: unknown, a: { db: string; kid: string }) => {
      if (!KID.test(a.kid))
        throw new NodusError('INVALID_ARGUMENT', 'kid must be an X-Wing key id: 64 lowercase hex characters')
      return dbShares(deps.kv.engine.reader, a.db, new Uint8Array(Buffer.from(a.kid, 'hex')), max)
    },
    readerKey: async (_: unknown, a: { peer: string }) => {
      if (a.peer.length === 0 || a.peer.length > 128)
        throw new NodusError('INVALID_ARGUMENT', 'peer must be a PeerId (1 to 128 characters)')
      return readerKeyAnswer(await deps.keyRecord(a.peer, AbortSignal.timeout(READER_KEY_TIMEOUT_MS)))
    },
  }
}
