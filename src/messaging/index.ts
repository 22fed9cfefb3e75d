// The public surface of messaging, exactly as listed in README.md.
export {
  checkTopic,
  createMessaging,
  GOSSIP_TOPIC_PREFIX,
  type Messaging,
  type MessagingComponents,
  type MessagingPeers,
  type MessagingPubsub,
  type PublishReceipt,
  type SubscribeOptions,
  type TopicInfo,
} from './area.ts'
export {
  BATCH_VERSION,
  type Batch,
  type BatchEntry,
  type BatchLimits,
  decodeBatch,
  encodeBatch,
} from './batch.ts'
export { Batcher, type BatcherDeps, type BatcherOptions } from './batcher.ts'
export {
  type GossipsubInit,
  gossipsubInit,
  PENALTY_HALF_LIFE_MS,
  PeerPenalties,
  REJECT_PENALTY,
} from './gossip.ts'
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
