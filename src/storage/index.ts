export { StorageAccounts } from './accounts.ts'
export { createStorage, type Storage, type StorageAreaOptions, type StorageComponents } from './area.ts'
export { AuditRecords } from './audit-records.ts'
export {
  BLAKE3_MULTIHASH,
  cidForBytes,
  cidForFile,
  cidFromDigest,
  cidToString,
  DAG_CBOR_CODEC,
  parseCid,
  RAW_CODEC,
  verifyCid,
} from './cid.ts'
export { allocAligned, directIoAvailable } from './direct-io.ts'
export { FileIndex } from './file-index.ts'
export {
  DEFAULT_FILE_OPTIONS,
  type FileProgress,
  FileService,
  type FileServiceDeps,
  type FileServiceOptions,
  type PutResult,
} from './files.ts'
export { HolderPolicy } from './holder-policy.ts'
export { DEFAULT_HOLDER_UPDATE_INBOX_OPTIONS, HolderUpdateInbox } from './holder-update-inbox.ts'
export {
  decodeManifest,
  type Manifest,
  type ManifestSegment,
  parseHolderUpdate,
  type SignedManifest,
  signHolderUpdate,
  signManifest,
} from './manifest.ts'
export { ManifestWatch } from './manifest-watch.ts'
export { signGrant, signOrder, signPin } from './orders.ts'
export { PinService, type PinServiceDeps } from './pins-service.ts'
export { placeShards } from './placement.ts'
export { placeScored } from './placement-scored.ts'
export { Popularity } from './popularity.ts'
export { ANNOUNCE_MAX_DEFER_MS, ANNOUNCE_QUIET_MS, Provider } from './provide.ts'
export { parityFor } from './redundancy.ts'
export { ReedSolomon } from './reed-solomon.ts'
export { DEFAULT_REPAIR_OPTIONS, type RepairEvent, Repairer } from './repair.ts'
export { responsibleFor } from './responsibility.ts'
export { type StorageRoutesDeps, storageRoutes } from './routes.ts'
export { segment } from './segmenter.ts'
export {
  DEFAULT_SHARD_SERVER_OPTIONS,
  type Receipt,
  SHARD_PROTOCOL,
  ShardClient,
  ShardServer,
  verifyReceipt,
} from './shard-protocol.ts'
export { ShardStore, type ShardStoreOptions, startExpiryCleanup } from './shard-store.ts'
