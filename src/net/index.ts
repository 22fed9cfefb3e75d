// The public surface of net, exactly as listed in README.md (test/net/index.test.ts checks both agree).

export { createNet, type Net, type NetAreaOptions, type NetComponents, type NetPeerPolicy } from './area.ts'
export {
  BulkChannel,
  type BulkDeps,
  type BulkHandler,
  type BulkOptions,
  type BulkReply,
  type BulkRequest,
  type BulkResponse,
  DEFAULT_BULK_OPTIONS,
} from './bulk.ts'
export {
  type ClosestPeersHost,
  closestPeers,
  closestPeersLocal,
  kadId,
  type LocalClosestHost,
  xorCompare,
} from './closest.ts'
export {
  createHost,
  DEFAULT_HOST_OPTIONS,
  type HostHooks,
  type HostOptions,
  type NodusLibp2p,
} from './host.ts'
export {
  announceBatch,
  type ProvideBatchDeps,
  type ProvideBatchOptions,
  type ProvideBatchResult,
  provideBatchDepsFor,
} from './provide-batch.ts'
export {
  parseReply,
  type Reply,
  type RequestDeps,
  type RequestOptions,
  requestResponse,
} from './request.ts'
export { type ConnectionView, type NetRoutesDeps, netRoutes } from './routes.ts'
export {
  encodeVarint,
  lengthPrefixed,
  StreamReader,
  type StreamReaderOptions,
  sendAll,
  sendWithBackpressure,
} from './stream-io.ts'
