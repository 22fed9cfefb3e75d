/**
 * The ledger area's config keys: section `ledger` of the config file (docs/CONFIG.md). Only keys that
 * cannot change what the ledger computes: every rule that decides a transaction's outcome or the state
 * root is a protocol constant (tx.ts, mana.ts, root.ts) or a genesis parameter (genesis.ts), never
 * node config. Pure table; the type {@link LedgerOptions} is derived from it.
 */
import { defineOptions, MiB, type OptionsOf } from '../common/options.ts'

export const LEDGER_OPTIONS = defineOptions({
  snapshotChunkBytes: {
    kind: 'int',
    default: 1 * MiB,
    min: 4096,
    max: 16 * MiB,
    description:
      'largest chunk of a ledger snapshot this node writes or accepts, bytes (snapshot.ts); entries in store order',
  },
  rootsKept: {
    kind: 'int',
    default: 100_000,
    min: 1,
    max: 100_000_000,
    description:
      'state roots kept, one per committed height (40 bytes each); older ones are deleted as new heights commit',
  },
})

/** Section `ledger` of the config, typed from {@link LEDGER_OPTIONS}. */
export type LedgerOptions = OptionsOf<typeof LEDGER_OPTIONS>

/** The defaults of section `ledger`. */
export const DEFAULT_LEDGER_OPTIONS: LedgerOptions = Object.freeze({
  snapshotChunkBytes: LEDGER_OPTIONS.snapshotChunkBytes.default,
  rootsKept: LEDGER_OPTIONS.rootsKept.default,
})
