/**
 * The net area's error codes (docs/ERRORS.md): the wire protocol, peers' limits, connections and
 * streams, the bulk channel.
 * Pure table: HTTP status, what happened, what to do; its codes join `ErrorCode` below.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

export const NET_ERRORS = defineErrors({
  PROTOCOL_ERROR: {
    status: 502,
    what: 'a peer broke the wire protocol',
    fix: 'nothing to do; the peer is rejected',
  },
  MESSAGE_TOO_LARGE: {
    status: 413,
    what: 'a frame exceeded its size bound',
    fix: 'nothing to do; the peer is rejected',
  },
  PEER_BUSY: {
    status: 503,
    what: 'a peer is at its concurrency limit',
    fix: 'clients try another holder; retry later',
  },
  PEER_UNREACHABLE: {
    status: 502,
    what: 'no connection to the peer could be made',
    fix: 'clients try another holder',
  },
  PEER_BANNED: {
    status: 403,
    what: 'this node (or the peer asked) banned the requesting peer for a fault (`trust.banMs`, docs/TRUST.md)',
    fix: 'nothing to do as a user; the ban ends by itself; an operator sees it in `nodus_trust_banned_peers`',
  },
  STREAM_CLOSED: {
    status: 502,
    what: 'a stream ended before a message was complete',
    fix: 'retry; the peer may have gone away',
  },
  BULK_UNAVAILABLE: {
    status: 502,
    what: 'no bulk channel (direct TLS socket) to the peer could be opened',
    fix: 'internal: shard transfers fall back to libp2p streams',
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof NET_ERRORS> {}
}
