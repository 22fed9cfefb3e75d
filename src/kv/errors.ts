/**
 * The kv area's error codes (docs/ERRORS.md): operations (malformed, too large, from the future,
 * already held), authorization, database ids and the hybrid logical clock. Forged signatures raise
 * the crypto area's `SIGNATURE_INVALID`; a full verification queue the common `QUEUE_FULL`.
 * Pure table: HTTP status, what happened, what to do; its codes join `ErrorCode`.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

export const KV_ERRORS = defineErrors({
  KV_OP_INVALID: {
    status: 400,
    what: 'a kv operation is malformed: not the {sig, body} dag-cbor envelope, a field of the wrong type, an unknown field, a bad op name or database id (peerAction `reject`; docs/PROTOCOLS.md, "KV operations")',
    fix: 'build operations with a current client (it signs what peers accept); `details.reason` names the field',
  },
  KV_OP_TOO_LARGE: {
    status: 413,
    what: 'a kv operation, key, field or value is over its bound (`kv.maxOpBytes`, `kv.maxKeyBytes`, `kv.maxFieldBytes`, `kv.maxValueBytes`)',
    fix: 'store smaller values (split them over keys or fields) or raise the bound on every node',
  },
  KV_OP_FROM_FUTURE: {
    status: 400,
    what: 'a kv operation is timestamped (its HLC) more than `kv.maxFutureSkewMs` ahead of this node’s clock (peerAction `ignore`)',
    fix: 'check both clocks (NTP); the operation is accepted once the clocks agree (anti-entropy offers it again)',
  },
  KV_OP_DUPLICATE: {
    status: 409,
    what: 'this node already holds a kv operation with this id (a replay or a second copy; peerAction `ignore`)',
    fix: 'nothing: the operation was applied once; a changed write must be a new operation (new HLC, new id)',
  },
  KV_UNAUTHORIZED: {
    status: 403,
    what: 'the signer of a kv operation may not write it; `details.reason`: not-owner, no-capability, capability-expired, capability-revoked, out-of-scope, wrong-db, hybrid-required or db-unknown',
    fix: 'write with the owner’s key or a writer key the owner granted (unexpired, unrevoked, the key inside its prefix); db-unknown and no-capability can clear once the database’s create or the grant arrives',
  },
  KV_KEY_NOT_FOUND: {
    status: 404,
    what: 'the kv database holds no visible value at that key (never written, deleted, or expired)',
    fix: 'check the database id and key; a write that has not reached this node yet appears after gossip or the next sync',
  },
  KV_DB_NOT_HOSTED: {
    status: 404,
    what: 'this node neither hosts nor keeps the kv database asked for (a sync request or a read; peerAction `ignore`)',
    fix: 'ask a node that hosts it (`nodus kv host DB` makes this node host it), or the database’s keepers',
  },
  KV_DB_FULL: {
    status: 507,
    what: 'a kv operation would take its database past `kv.maxDbBytes`, or all databases past `kv.maxBytes`, of operation bytes held on this node; nothing of it is kept (from a peer: peerAction `ignore`)',
    fix: 'the database is full on this node: write less (deleting keys frees no op bytes: operations are kept for replication), use another database, or raise the bound on its hosts; `details` has `db`, `bytes` and `limit`',
  },
  KV_DB_ID_INVALID: {
    status: 400,
    what: 'a database id is not `<name>-<owner key id>` (name: 1–64 of a-z 0-9 . _ -, starting with a letter or digit; owner key id: the `z6Mk…` did:key of an Ed25519 key)',
    fix: 'use the id `nodus kv create` printed, or build it from a valid name and the owner’s public key',
  },
  KV_CLOCK_EXHAUSTED: {
    status: 503,
    what: 'the hybrid logical clock used up its 65,536 counter values at the largest timestamp it may issue (`kv.maxFutureSkewMs` ahead of the wall clock)',
    fix: 'retry in a millisecond; check this node’s clock if it persists',
  },
  KV_DB_KEY_MISSING: {
    status: 403,
    what: 'no key of a private (sealed) database’s epoch could be opened here: no `share` of it is held for this node’s X-Wing keys, or the X-Wing key it was sealed to was deleted after rotation',
    fix: 'ask the database’s owner to share the key with this node (`nodus kv share --db DB --reader <PeerId>`); shares arrive by gossip or the next sync',
  },
  KV_SEALED_VALUE_INVALID: {
    status: 400,
    what: 'a value read from a private (sealed) database is not a sealed value (src/kv/sealed.ts: "NKS", version 1, epoch, nonce, ciphertext)',
    fix: 'the database was written by a writer that did not seal; read it as a plain database or ask the owner to overwrite the key',
  },
})

/** The typed state machine's codes (src/kv/state/). */
export const KV_STATE_ERRORS = defineErrors({
  KV_ARGS_INVALID: {
    status: 400,
    what: "an op's type, op name, key, field or args do not fit the kv op catalog (src/kv/state/ops.ts), e.g. a zadd score that is not a number or a member over 512 bytes (from a peer: peerAction `reject`)",
    fix: 'fix the op as the message says; docs list each op and its args',
  },
  KV_WRONG_TYPE: {
    status: 409,
    what: "a read for one type (e.g. HGET) named a key that holds another type (Redis's WRONGTYPE)",
    fix: 'read the key with the commands of its type (`type` tells which)',
  },
  KV_INDEX_NOT_FOUND: {
    status: 404,
    what: 'no secondary index of that name is declared for the database',
    fix: 'use a name the database’s first create declares (`indexes`; `nodus kv create NAME --index NAME=hash:FIELD`; docs/PROTOCOLS.md, KV operations)',
  },
})

/** Reconciliation's codes (src/kv/reconcile/). */
export const KV_RECON_ERRORS = defineErrors({
  RECON_MESSAGE_INVALID: {
    status: 400,
    what: "a peer's reconciliation message is malformed (bad varint, bound or key out of order, unknown mode, a reply to a list this node never sent) or over kv.reconMaxMessageBytes (peerAction `reject`)",
    fix: 'nothing to do; the session ends and the peer is reported (docs/PROTOCOLS.md, "KV reconciliation")',
  },
  RECON_VERSION_UNSUPPORTED: {
    status: 400,
    what: 'a peer speaks another version of the reconciliation protocol (peerAction `ignore`)',
    fix: 'upgrade the older node; until then the two do not reconcile directly',
  },
  RECON_ROUNDS_EXCEEDED: {
    status: 503,
    what: 'a reconciliation session needed more than kv.reconMaxRounds messages (peerAction `ignore`)',
    fix: 'nothing to do: the next session resumes; a large catch-up needs about 40 bytes per missing op / kv.reconMaxMessageBytes rounds, so raise either for bulk catch-ups',
  },
})

/** The GraphQL interface's codes (src/kv/graphql.ts), in `errors[].extensions.code`. */
export const KV_GRAPHQL_ERRORS = defineErrors({
  KV_GRAPHQL_INVALID: {
    status: 400,
    what: 'a GraphQL document that does not parse (syntax), has more than kv.graphqlMaxTokens tokens, or does not validate against the kv schema (unknown field or argument, wrong type, missing variable); `message` says where',
    fix: 'fix the query; the schema is in docs/API.md ("GraphQL (kv)") and served by introspection at /graphql',
  },
  KV_GRAPHQL_TOO_COMPLEX: {
    status: 400,
    what: 'a GraphQL operation deeper than kv.graphqlMaxDepth, with more fields than kv.graphqlMaxFields or more top-level fields than kv.graphqlMaxRootFields',
    fix: 'split it into several requests, or raise the bound on the node',
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes
    extends CodesOf<typeof KV_ERRORS>,
      CodesOf<typeof KV_STATE_ERRORS>,
      CodesOf<typeof KV_RECON_ERRORS>,
      CodesOf<typeof KV_GRAPHQL_ERRORS> {}
}
