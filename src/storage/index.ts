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
export {
  DEFAULT_FILE_OPTIONS,
  type FileProgress,
  FileService,
  type FileServiceDeps,
  type FileServiceOptions,
  type PutResult,
} from './files.ts'
export {
  decodeManifest,
  type Manifest,
  type ManifestSegment,
  type SignedManifest,
  signManifest,
} from './manifest.ts'
export { placeShards } from './placement.ts'
export { ReedSolomon } from './reed-solomon.ts'
export { segment } from './segmenter.ts'
export {
  DEFAULT_SHARD_SERVER_OPTIONS,
  type Receipt,
  SHARD_PROTOCOL,
  ShardClient,
  ShardServer,
  verifyReceipt,
} from './shard-protocol.ts'
export { ShardStore, type ShardStoreOptions } from './shard-store.ts'
