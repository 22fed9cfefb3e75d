/**
 * The kv area's error codes (docs/ERRORS.md). Reconciliation (reconcile/): a peer's malformed or
 * oversized message, an unknown protocol version, a session over its round limit. Pure table: HTTP
 * status, what happened, what to do; its codes join `ErrorCode`.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

/** Codes of kv reconciliation (src/kv/reconcile/, docs/PROTOCOLS.md "KV reconciliation"). */
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

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof KV_RECON_ERRORS> {}
}
