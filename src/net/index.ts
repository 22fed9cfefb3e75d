export {
  bannedPeerGater,
  createHost,
  DEFAULT_HOST_OPTIONS,
  type HostHooks,
  type HostOptions,
  type NodusLibp2p,
} from './host.ts'
export {
  encodeVarint,
  lengthPrefixed,
  StreamReader,
  type StreamReaderOptions,
  sendAll,
  sendWithBackpressure,
} from './stream-io.ts'
