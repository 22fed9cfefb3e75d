/**
 * The trust area: EigenTrust global trust from local interaction records, signed trust vectors and
 * capacity/locality reports exchanged between peers, a per-peer performance monitor, a token-bucket
 * rate limiter, the signed-record-with-authority check (authority.ts), and peer actions (penalize,
 * disconnect, ban) with a persisted ban list. Built by `createTrust` (area.ts); its network service,
 * the reports exchange (`/nodus/reports/1.0.0`), by `createTrustExchange`. Clock injected everywhere.
 * Other areas import only from here. See README.md and docs/TRUST.md.
 */

export {
  createTrust,
  createTrustExchange,
  type PeerObserver,
  type TransferOutcome,
  type Trust,
  type TrustAreaOptions,
  type TrustComponents,
  type TrustExchange,
  type TrustExchangeComponents,
  type TrustExchangeOptions,
} from './area.ts'
export {
  ANY_SIGNER,
  type AuthorityRules,
  accountableSigner,
  checkSignedRecord,
  type RecordSignature,
  refuseVerified,
  type SignedRecord,
  type VerifiedRecord,
  verifyRecordSignature,
} from './authority.ts'
export { LmdbBanStore } from './ban-store.ts'
export {
  type ComputeEigenTrustOptions,
  computeEigenTrust,
  DEFAULT_EIGENTRUST_ALPHA,
  DEFAULT_EIGENTRUST_EPSILON,
  DEFAULT_EIGENTRUST_MAX_ITERATIONS,
  EigenTrust,
  type EigenTrustOptions,
  type EigenTrustResult,
  type PreTrusted,
  type SparseMatrix,
} from './eigentrust.ts'
export {
  type BanRecord,
  type BanStore,
  DEFAULT_PEER_ACTIONS_OPTIONS,
  MemoryBanStore,
  PeerActions,
  type PeerActionsDeps,
  type PeerActionsOptions,
  type PeerEffect,
} from './peer-actions.ts'
export {
  DEFAULT_PERF_MONITOR_OPTIONS,
  type PeerPerf,
  PerfMonitor,
  type PerfMonitorDeps,
  type PerfMonitorOptions,
  type TransferSample,
} from './perf-monitor.ts'
export {
  IssuerGate,
  type IssuerGateOptions,
  TokenBucketLimiter,
  type TokenBucketOptions,
} from './rate-limit.ts'
export {
  DEFAULT_INTERACTION_WEIGHTS,
  INTERACTION_KINDS,
  type InteractionKind,
  InteractionRecords,
  type InteractionRecordsOptions,
} from './records.ts'
export {
  CAPACITY_REPORT_DOMAIN,
  type CapacityReport,
  CapacityReportInbox,
  type CapacityReportInboxOptions,
  type CheckReportOptions,
  checkReport,
  DEFAULT_CAPACITY_REPORT_INBOX_OPTIONS,
  decodeCapacityReport,
  MAX_CAPACITY_REPORT_BYTES,
  openCapacityReport,
  type ReportCheck,
  type ReportIssue,
  type ReportObservations,
  type SignedCapacityReport,
  signCapacityReport,
  verifyCapacityReport,
} from './reports.ts'
export type { Ed25519Signer, FreshnessOptions } from './signed.ts'
export { decodeEnvelope, signingBytes } from './signed.ts'
export {
  DEFAULT_TRUST_VECTOR_INBOX_OPTIONS,
  decodeTrustVector,
  MAX_TRUST_VECTOR_BYTES,
  MAX_TRUST_VECTOR_ENTRIES,
  openTrustVector,
  type SignedTrustVector,
  signTrustVector,
  TRUST_VECTOR_DOMAIN,
  TRUST_WEIGHT_SCALE,
  type TrustVector,
  TrustVectorInbox,
  type TrustVectorInboxOptions,
  trustVectorFromLocalTrust,
  verifyTrustVector,
} from './trust-vector.ts'
