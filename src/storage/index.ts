export { allocAligned, directIoAvailable } from '../common/direct-io.ts'
export { createStorage } from './area.ts'
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
} from './codec/cid.ts'
export { ReedSolomon } from './codec/reed-solomon.ts'
export { segment } from './codec/segmenter.ts'
export type {
  Storage,
  StorageAreaOptions,
  StorageComponents,
  StorageHost,
  StorageNet,
  StorageStore,
  StorageStoreDeps,
  StorageTrust,
  StorageTuning,
} from './components.ts'
export { FileIndex } from './files/file-index.ts'
export {
  DEFAULT_FILE_OPTIONS,
  type FileProgress,
  FileService,
  type FileServiceDeps,
  type FileServiceOptions,
  type PutResult,
} from './files/files.ts'
export { parseHolderUpdate, signHolderUpdate } from './files/holder-update.ts'
export {
  decodeManifest,
  type Manifest,
  type ManifestSegment,
  type SignedManifest,
  signManifest,
} from './files/manifest.ts'
export { PinService, type PinServiceDeps } from './files/pins-service.ts'
export { AuditRecords } from './keeper/audit-records.ts'
export { DEFAULT_HOLDER_UPDATE_INBOX_OPTIONS, HolderUpdateInbox } from './keeper/holder-update-inbox.ts'
export { ManifestWatch } from './keeper/manifest-watch.ts'
export { Popularity } from './keeper/popularity.ts'
export { parityFor } from './keeper/redundancy.ts'
export { DEFAULT_REPAIR_OPTIONS, type RepairEvent, Repairer } from './keeper/repair.ts'
export { responsibleFor } from './keeper/responsibility.ts'
export { placeShards } from './placement/placement.ts'
export { placeScored } from './placement/placement-scored.ts'
export { StorageAccounts } from './protocol/accounts.ts'
export { HolderPolicy } from './protocol/holder-policy.ts'
export { signGrant, signOrder, signPin } from './protocol/orders.ts'
export { ANNOUNCE_MAX_DEFER_MS, ANNOUNCE_QUIET_MS, Provider } from './protocol/provide.ts'
export { ShardClient } from './protocol/shard-client.ts'
export { type Receipt, SHARD_PROTOCOL, verifyReceipt } from './protocol/shard-messages.ts'
export { DEFAULT_SHARD_SERVER_OPTIONS, ShardServer } from './protocol/shard-server.ts'
export { type StorageRoutesDeps, storageRoutes } from './routes.ts'
export {
  type RemovalReason,
  ShardStore,
  type ShardStoreOptions,
  startExpiryCleanup,
} from './store/shard-store.ts'
