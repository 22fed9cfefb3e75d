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
  KEY_NOT_FOUND: {
    status: 404,
    what: 'no valid key record of the recipient was found (not in the cache, not from the peer, not in the DHT), so a direct message cannot be sealed to it',
    fix: 'check the PeerId; the recipient publishes its key record when it starts, so it must have run once while connected',
  },
  INBOX_FULL: {
    status: 507,
    what: 'the inbox holds `messaging.inboxMaxMessages` direct messages; new ones are refused and wait at the mailbox keepers',
    fix: 'read and delete messages (DELETE /messages/:id) or raise messaging.inboxMaxMessages',
  },
  MAILBOX_FULL: {
    status: 507,
    what: 'this keeper holds `messaging.mailboxMaxMessages` or `messaging.mailboxMaxBytes` of sealed messages for others',
    fix: 'nothing to do as a sender (the other keepers store it); as a keeper, raise the bounds',
  },
  MAILBOX_RECIPIENT_FULL: {
    status: 507,
    what: 'this keeper holds `messaging.mailboxRecipientMessages` or `messaging.mailboxRecipientBytes` of sealed messages for this recipient, from all storing peers together (peerAction `ignore`)',
    fix: 'nothing to do as a sender (the other keepers store it, and room returns as the recipient collects); as a keeper, raise the bounds',
  },
  MAILBOX_UNAVAILABLE: {
    status: 503,
    what: 'the recipient was unreachable and no mailbox keeper (a peer XOR-closest to it) stored the message',
    fix: 'connect to more peers (the DHT must know peers close to the recipient) and send again',
  },
  MAILBOX_REQUEST_INVALID: {
    status: 400,
    what: 'a /nodus/msg/1.0.0 request is malformed, or a mailbox acknowledgement is not signed by the recipient, not for this keeper or stale (peerAction `reject`)',
    fix: 'nothing to do; the request is refused and the peer reported',
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof MESSAGING_ERRORS> {}
}
