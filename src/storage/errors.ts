/**
 * The storage area's error codes (docs/ERRORS.md): CIDs, shards, the store, erasure coding,
 * manifests, placement, storage orders and quotas.
 * Pure table: HTTP status, what happened, what to do; its codes join `ErrorCode` below.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

export const STORAGE_ERRORS = defineErrors({
  CID_INVALID: {
    status: 400,
    what: 'not a CIDv1 with a BLAKE3-256 multihash',
    fix: 'pass a CID printed by `nodus put` or `nodus cid`',
  },
  CID_MISMATCH: {
    status: 502,
    what: 'bytes do not hash to their CID',
    fix: 'nothing was stored; the peer that sent them is banned; retry elsewhere',
  },
  SHARD_MISSING: {
    status: 404,
    what: 'this node does not hold the requested shard',
    fix: 'ask another holder (clients do this themselves)',
  },
  SHARD_TOO_LARGE: {
    status: 413,
    what: 'a shard exceeds `storage.maxShardBytes`',
    fix: 'use a smaller segment size or raise the limit',
  },
  STORE_FULL: {
    status: 507,
    what: 'storing would exceed `storage.capacityBytes`',
    fix: 'free space, unpin data or raise the capacity',
  },
  STORE_CLOSED: {
    status: 503,
    what: 'the shard store is closed (node stopping)',
    fix: 'retry against a running node',
  },
  ERASURE_INVALID: {
    status: 400,
    what: 'bad Reed-Solomon parameters or shard sizes',
    fix: 'k ≥ 1, k + m ≤ 256, equal shard sizes',
  },
  DECODE_FAILED: {
    status: 502,
    what: 'fewer than k shards of a segment could be fetched',
    fix: 'wait for holders to return or for repair; more than m shards were lost',
  },
  MANIFEST_INVALID: {
    status: 400,
    what: 'a manifest is malformed or inconsistent',
    fix: 'the CID does not name a nodus manifest',
  },
  MANIFEST_NOT_FOUND: {
    status: 404,
    what: 'no reachable peer holds the manifest',
    fix: 'check the CID; connect to the network the file was stored on',
  },
  NOT_ENOUGH_PEERS: {
    status: 503,
    what: 'no peer accepted a shard after retries',
    fix: 'connect more peers (`--bootstrap`), or check their free capacity',
  },
  ORDER_INVALID: {
    status: 403,
    what: "a peer's put, commit or pin carried no storage order, or one that is malformed, not signed by the sender, for another holder or another block, too large or stale",
    fix: 'nothing stored; send a storage order signed by the uploader (docs/PROTOCOLS.md, "Storage orders")',
  },
  QUOTA_EXCEEDED: {
    status: 507,
    what: 'storing or pinning would take the uploader (or pinner) past its quota on this holder (`storage.quotaBytes`, `storage.quotaShards`, scaled by trust)',
    fix: "let leases expire, unpin, or store on other holders; the uploader's trust raises its quota",
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof STORAGE_ERRORS> {}
}
