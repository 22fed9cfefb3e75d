/**
 * The trust area's error codes (docs/ERRORS.md): trust vectors, capacity reports, rate limits,
 * signed records' authority and revisions.
 * Pure table: HTTP status, what happened, what to do; its codes join `ErrorCode` below.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

export const TRUST_ERRORS = defineErrors({
  TRUST_VECTOR_INVALID: {
    status: 400,
    what: "a peer's signed trust vector is malformed, stale, from the future or a replay",
    fix: 'nothing to do; the vector is dropped (malformed: the peer is rejected)',
  },
  CAPACITY_REPORT_INVALID: {
    status: 400,
    what: "a peer's signed capacity/locality report is malformed, stale or a replay",
    fix: 'nothing to do; the report is dropped (malformed: the peer is rejected)',
  },
  RATE_LIMITED: {
    status: 429,
    what: 'a peer sent trust vectors or reports faster than its rate limit',
    fix: 'nothing to do; the message is dropped; the limits are in docs/TRUST.md',
  },
  NOT_AUTHORIZED: {
    status: 403,
    what: "a signed record (a holder update) verified, but its signer has no authority over its subject (for a holder update: neither the manifest's uploader nor one of its keepers as this node sees them)",
    fix: 'nothing to do; the record is refused (peerAction `reject`) and recorded against its signer',
  },
  REVISION_INVALID: {
    status: 409,
    what: "a signed record's revision is not newer than the last accepted one (peerAction `ignore`: dropped), or jumps more than the allowed step past it (peerAction `reject`: refused and recorded against its signer)",
    fix: 'nothing to do; keepers accept revisions last + 1 … last + 16 (docs/PROTOCOLS.md, "Holder updates")',
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof TRUST_ERRORS> {}
}
