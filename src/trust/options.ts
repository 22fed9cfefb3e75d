/**
 * The trust area's config keys: section `trust` of the config file (docs/CONFIG.md). Pure table; the
 * type {@link TrustOptions} is derived from it.
 */
import { defineOptions, type OptionsOf } from '../common/options.ts'

/** Section `trust`: EigenTrust, the reports exchange, and what peers' faults cost them. */
export const TRUST_OPTIONS = defineOptions({
  preTrusted: {
    kind: 'strings',
    default: [],
    description: 'PeerIds whose trust EigenTrust starts from (pre-trusted peers); empty: uniform',
  },
  region: {
    kind: 'string',
    default: 'unknown',
    description: "this node's region tag in its capacity reports (lower case, e.g. eu-west)",
  },
  networks: {
    kind: 'strings',
    default: ['unknown'],
    description: "this node's network tags (the first is primary, e.g. an AS number as13335)",
  },
  exchangeIntervalMs: {
    kind: 'int',
    default: 60_000,
    min: 100,
    description: 'time between pushes of the signed trust vector and capacity report to peers, ms',
  },
  banMs: {
    kind: 'int',
    default: 86_400_000,
    min: 1_000,
    description:
      'how long a peer stays banned after a `ban` fault (e.g. CID_MISMATCH, SIGNATURE_INVALID; docs/ERRORS.md), ms',
  },
  rejectWindowMs: {
    kind: 'int',
    default: 600_000,
    min: 1_000,
    description: "window in which a peer's `reject` faults are counted toward a disconnect, ms",
  },
  rejectsToDisconnect: {
    kind: 'int',
    default: 10,
    min: 1,
    description: '`reject` faults within `trust.rejectWindowMs` after which the peer is disconnected',
  },
  maxBans: {
    kind: 'int',
    default: 10_000,
    min: 1,
    description: 'most bans kept (persisted in `<dataDir>/bans`); beyond it the oldest ban is lifted',
  },
})

/** The values of section `trust` (config.trust). */
export type TrustOptions = OptionsOf<typeof TRUST_OPTIONS>
