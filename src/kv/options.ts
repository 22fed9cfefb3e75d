/**
 * The kv area's config keys: section `kv` of the config file (docs/CONFIG.md). Reconciliation keys
 * (`recon*`, src/kv/reconcile/protocol.ts; docs/PROTOCOLS.md "KV reconciliation" explains each).
 * Pure table; the type {@link KvReconOptions} is derived from it.
 */
import { defineOptions, MiB, type OptionsOf } from '../common/options.ts'

/** Bytes in a kibibyte (2^10). */
const KiB = 1024

/** Reconciliation keys of section `kv`. */
export const KV_RECON_OPTIONS = defineOptions({
  reconSplitFactor: {
    kind: 'int',
    default: 16,
    min: 2,
    max: 256,
    description:
      'B: a range whose fingerprints differ and that holds more than kv.reconIdListThreshold ops is split into this many sub-ranges of about equal counts',
  },
  reconIdListThreshold: {
    kind: 'int',
    default: 32,
    min: 1,
    max: 4096,
    description:
      'a range whose fingerprints differ is answered with its op keys (40 bytes each) rather than split when this node holds at most this many ops in it (or the peer holds none)',
  },
  reconMaxMessageBytes: {
    kind: 'int',
    default: 1 * MiB,
    min: 4 * KiB,
    max: 16 * MiB,
    description:
      'largest reconciliation message this node sends or accepts, bytes (each side sends at most the smaller of its own and the peer’s); a longer exchange continues over more rounds',
  },
  reconMaxRounds: {
    kind: 'int',
    default: 128,
    min: 1,
    max: 100_000,
    description:
      'most messages one side of a reconciliation session sends; beyond it the session ends with RECON_ROUNDS_EXCEEDED (in-sync: 1; catch-up of M ops: about log_B(n) + 40·M / kv.reconMaxMessageBytes)',
  },
})

/** The reconciliation keys' values. */
export type KvReconOptions = OptionsOf<typeof KV_RECON_OPTIONS>
