// The public surface of messaging, exactly as listed in README.md.
export {
  checkTopic,
  createMessaging,
  GOSSIP_TOPIC_PREFIX,
  type Messaging,
  type MessagingComponents,
  type MessagingPeers,
  type MessagingPubsub,
  type PublishOptions,
  type PublishReceipt,
  type SubscribeOptions,
  type TopicInfo,
} from './area.ts'
export {
  BATCH_VERSION,
  BATCH_VERSION_FLAGS,
  type Batch,
  type BatchEntry,
  type BatchLimits,
  decodeBatch,
  encodeBatch,
  MAX_MQTT_TOPIC_BYTES,
} from './batch.ts'
export { Batcher, type BatcherDeps, type BatcherOptions, type MessageMarks } from './batcher.ts'
export {
  ACK_SKEW_MS,
  createDirectMessaging,
  DIRECT_PROTOCOL,
  type DirectComponents,
  type DirectHost,
  type DirectMessaging,
  MAILBOX_ACK_DOMAIN,
  MAX_ACK_IDS,
  mailboxAckBytes,
  type SendReceipt,
} from './direct.ts'
export { type DirectRoutesDeps, directRoutes } from './direct-routes.ts'
export {
  DirectStore,
  type DirectStoreLimits,
  type InboxAdd,
  type InboxMessage,
  type KeyEpoch,
  type MailboxEntry,
  type MailboxPut,
  type NewInboxMessage,
} from './direct-store.ts'
export {
  type GossipsubInit,
  gossipsubInit,
  PENALTY_HALF_LIFE_MS,
  PeerPenalties,
  REJECT_PENALTY,
} from './gossip.ts'
export {
  KEY_RECORD_DHT_NAMESPACE,
  KeyDirectory,
  type KeyDirectoryDeps,
  type KeyDirectoryDht,
  type KeyDirectoryOptions,
  keyRecordDhtKey,
  keyRecordSelector,
  keyRecordValidator,
} from './key-directory.ts'
export {
  BRIDGE_PROPERTY,
  MESSAGE_ID_PROPERTY,
  MqttBridge,
  type MqttBridgeDeps,
  type MqttBridgeOptions,
  type MqttBridgeStatus,
} from './mqtt-bridge.ts'
export {
  exportMarkerTopic,
  exportsOf,
  exportTopics,
  importsOf,
  rendezvousWinner,
} from './mqtt-topics.ts'
export { type MessagingOptions, messagingOptionProblems } from './options.ts'
export { OrderedInbox, type OrderedInboxDeps, type OrderedInboxOptions } from './ordering.ts'
export { type MessagingRoutesDeps, messagingRoutes } from './routes.ts'
export {
  type CloseReason,
  type PubsubMessage,
  type SlowPolicy,
  Subscription,
  type SubscriptionHooks,
} from './subscription.ts'
