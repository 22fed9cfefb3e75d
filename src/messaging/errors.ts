/**
 * The messaging area's error codes (docs/ERRORS.md): topics, batches from peers, local subscriptions.
 * Pub/sub also raises `MESSAGE_TOO_LARGE` (a message over `messaging.maxMessageBytes`) and `QUEUE_FULL`
 * (the publish queue). Pure table: HTTP status, what happened, what to do; its codes join `ErrorCode`.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

export const MESSAGING_ERRORS = defineErrors({
  TOPIC_INVALID: {
    status: 400,
    what: 'a topic name is empty, longer than `messaging.maxTopicBytes` or has control characters',
    fix: 'use a shorter topic of printable characters',
  },
  BATCH_INVALID: {
    status: 400,
    what: "a peer's pub/sub batch is malformed or over a bound (peerAction `reject`), or stale, from the future or already delivered (peerAction `ignore`)",
    fix: 'nothing to do; the batch is dropped and, when malformed, its sender penalized (docs/PROTOCOLS.md, "Pub/sub")',
  },
  SUBSCRIPTION_LIMIT: {
    status: 503,
    what: 'this node already has `messaging.maxSubscriptions` local subscriptions (SSE clients included)',
    fix: 'close a subscription or raise messaging.maxSubscriptions',
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof MESSAGING_ERRORS> {}
}
