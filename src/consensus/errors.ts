/**
 * The consensus area's error codes (docs/ERRORS.md): genesis files, vertices (malformed, over a
 * bound, from the wrong epoch, too far in the future), and the halt on too many equivocators.
 * Forged vertex signatures raise the crypto area's `SIGNATURE_INVALID` (peerAction `ban`).
 * Pure table: HTTP status, what happened, what to do; its codes join `ErrorCode`.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

export const CONSENSUS_ERRORS = defineErrors({
  GENESIS_INVALID: {
    status: 400,
    what: 'a genesis file is malformed (a field of the wrong type or out of its bounds, duplicate member keys, a seed not 32 bytes) or a member signature is missing or does not verify; `details.reason` names the field',
    fix: 'rebuild the genesis with `nodus genesis` and have every member sign it; all nodes of a federation must hold the same file',
  },
  GENESIS_INCOMPLETE: {
    status: 400,
    what: 'a genesis file is a draft: some members have not signed it yet (`details.unsigned` lists their indexes), so no node may run it',
    fix: 'have each member missing run `nodus genesis sign FILE` on its own machine, passing the file on; `nodus genesis verify FILE` lists who has signed',
  },
  GENESIS_NOT_MEMBER: {
    status: 403,
    what: 'this identity is not a member of the genesis it was asked to sign: its Ed25519 key (and in hybrid mode its ML-DSA-65 key) is not in the member list',
    fix: 'sign with the data dir of a member (`--data-dir`), or have the genesis rebuilt with your keys (`nodus id --json`, `nodus genesis init --member`)',
  },
  VERTEX_INVALID: {
    status: 400,
    what: 'a DAG vertex is malformed: not the {body, sig} dag-cbor envelope, not canonical, a field of the wrong type, an author outside the committee, parents that break the DAG rules (fewer than 2f+1 authors of the previous round, not the author’s own previous vertex first, two parents by one author, a parent of a later round), or a timestamp before a parent’s (peerAction `reject`)',
    fix: 'nothing to do on this node; a validator that keeps sending such vertices runs a broken or hostile build',
  },
  VERTEX_TOO_LARGE: {
    status: 413,
    what: 'a DAG vertex is over the genesis bounds: more bytes than maxVertexBytes or more transactions than maxTxsPerVertex (peerAction `reject`)',
    fix: 'nothing to do on this node; proposers must respect the genesis bounds',
  },
  VERTEX_WRONG_EPOCH: {
    status: 400,
    what: 'a DAG vertex belongs to another epoch than the committee this node runs (peerAction `ignore`)',
    fix: 'nothing, unless this node is behind: then catch up to the current epoch',
  },
  VERTEX_FROM_FUTURE: {
    status: 400,
    what: 'a DAG vertex is timestamped more than consensus.maxFutureSkewMs ahead of this node’s clock (peerAction `ignore`; fetched again later as a missing parent)',
    fix: 'check the clocks of this node and the vertex’s author (NTP)',
  },
  CONSENSUS_HALTED: {
    status: 503,
    what: 'more than f validators equivocated (signed two vertices for one round), or two vertices of one leader slot were both certified: the consensus core stopped committing rather than risk a fork; `details.equivocators` lists them',
    fix: 'keep the evidence (`nodus dag status`), remove the equivocating validators by a new genesis or governance epoch, and restart the federation from the last common commit',
  },
  CONSENSUS_OFF: {
    status: 503,
    what: 'this node runs no consensus: it was started without a genesis file (consensus.genesis)',
    fix: 'start the node with `nodus start --genesis FILE` (the federation’s signed genesis, `nodus genesis`)',
  },
  CONSENSUS_NO_VALIDATOR: {
    status: 503,
    what: 'this node follows the DAG and could not hand a transaction to any validator (none reachable, or all refused it); `details.tried` counts them',
    fix: 'check that validators are running and connected (`nodus dag status`), then retry',
  },
  VERTEX_NOT_FOUND: {
    status: 404,
    what: 'this node holds no vertex with that digest (never seen, or garbage-collected below the DAG floor)',
    fix: 'ask another node, or check the digest (`GET /dag/status` lists recent rounds)',
  },
  CONSENSUS_SNAPSHOT_UNVOUCHED: {
    status: 502,
    what: 'a peer offered a ledger snapshot for catch-up that fewer than f+1 validators vouch for (root, commit time and committer state at its height); it is not installed (peerAction `ignore`: the peer may be honest and the vouchers unreachable)',
    fix: 'nothing: the node asks other peers at the next check (consensus.catchupCheckMs); if it persists, check that validators are reachable (`nodus dag status`)',
  },
  CONSENSUS_SNAPSHOT_UNAVAILABLE: {
    status: 503,
    what: 'a peer has no snapshot or vouch to give for catch-up (its committer and ledger are between commits, the height is no longer kept, the snapshot is over consensus.catchupMaxSnapshotBytes, or the chunk asked was evicted from its cache)',
    fix: 'nothing: the node asks again or another peer at the next check',
  },
  TX_POOL_FULL: {
    status: 503,
    what: 'the validator’s pending transaction pool is full (consensus.maxPendingTxs or consensus.maxPendingTxBytes)',
    fix: 'retry later or submit through another validator',
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof CONSENSUS_ERRORS> {}
}
