// The public surface of the ledger (README.md). One line per module, so the parts of the area merge cleanly.
export type { RefusalCode } from './apply.ts'
export * from './area.ts'
export type { AccountEntry, LedgerConfig, SupplyCounters, TokenEntry } from './codec.ts'
export * from './committee.ts'
export * from './errors.ts'
export * from './genesis.ts'
export * from './mana.ts'
export * from './metrics.ts'
export * from './options.ts'
export { BUCKETS, bucketOf, hashBucket } from './root.ts'
export * from './routes.ts'
export * from './section.ts'
export * from './snapshot.ts'
export {
  type AccountView,
  type BatchResult,
  type CheckedTx,
  checkTxs,
  Ledger,
  type LedgerBatch,
  type LedgerDeps,
  type TxOutcome,
  type VerifyFn,
} from './state.ts'
export * from './tx.ts'
