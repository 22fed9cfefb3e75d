/**
 * Real libp2p hosts on loopback, each running gossipsub (the messaging area's init) and the messaging
 * area, for the pub/sub tests: no fakes on the wire.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import type { Clock } from '../../src/common/clock.ts'
import { systemClock } from '../../src/common/clock.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { parseConfig } from '../../src/config/config.ts'
import {
  createMessaging,
  GOSSIP_TOPIC_PREFIX,
  gossipsubInit,
  type Messaging,
  type MessagingOptions,
  type MessagingPeers,
  PeerPenalties,
} from '../../src/messaging/index.ts'
import { NodusMetrics } from '../../src/metrics/index.ts'
import { createHost, DEFAULT_HOST_OPTIONS, type NodusLibp2p } from '../../src/net/index.ts'
import { waitFor } from '../utils/wait.ts'

/** The `messaging.*` defaults with `over` applied (validated like a config file). */
export function messagingOptions(
  over: Partial<Record<keyof MessagingOptions, unknown>> = {},
): MessagingOptions {
  return parseConfig({ dataDir: '/unused', messaging: over }).messaging
}

export interface PubsubPeer {
  libp2p: NodusLibp2p
  messaging: Messaging
  metrics: NodusMetrics
  penalties: PeerPenalties
  /** What the area reported to peer actions: (peer, error code). */
  reports: { peer: string; code: string }[]
  /** Peers the test bans (isBanned reads it). */
  banned: Set<string>
  peerId: string
  stop(): Promise<void>
}

/**
 * One host with gossipsub and the messaging area, started. `privateKey` (default a new Ed25519 key)
 * lets a test know the PeerId before the options (the MQTT bridge's `mqttPeers`).
 */
export async function startPubsubPeer(
  over: Partial<Record<keyof MessagingOptions, unknown>> = {},
  clock: Clock = systemClock,
  peerPolicy?: (libp2p: NodusLibp2p) => MessagingPeers,
  privateKey?: PrivateKey,
): Promise<PubsubPeer> {
  const options = messagingOptions(over)
  const penalties = new PeerPenalties(clock, options.maxPenalizedPeers)
  const libp2p = await createHost(
    privateKey ?? (await generateKeyPair('Ed25519')),
    { ...DEFAULT_HOST_OPTIONS },
    { pubsub: gossipsubInit(options, penalties) },
  )
  await libp2p.start()
  const metrics = new NodusMetrics()
  const reports: { peer: string; code: string }[] = []
  const banned = new Set<string>()
  const pubsub = libp2p.services.pubsub
  if (pubsub === undefined) throw new Error('no pubsub service')
  const policy = peerPolicy?.(libp2p)
  const messaging = createMessaging(
    {
      logger: silentLogger(),
      clock,
      metrics,
      self: libp2p.peerId.toString(),
      pubsub,
      penalties,
      peers: {
        isBanned: (p) => banned.has(p),
        report: (peer, err) => {
          reports.push({ peer, code: (err as { code: string }).code })
          return policy?.report(peer, err)
        },
      },
    },
    options,
  )
  messaging.start()
  return {
    libp2p,
    messaging,
    metrics,
    penalties,
    reports,
    banned,
    peerId: libp2p.peerId.toString(),
    async stop() {
      await messaging.beforeStop()
      messaging.stop()
      await libp2p.stop()
    },
  }
}

/** Dial every pair. */
export async function connectAll(peers: readonly { libp2p: NodusLibp2p }[]): Promise<void> {
  for (let i = 0; i < peers.length; i++)
    for (let j = i + 1; j < peers.length; j++)
      await peers[i]?.libp2p.dial((peers[j] as { libp2p: NodusLibp2p }).libp2p.getMultiaddrs())
}

/** Wait until each of `publishers` sees each of `subscribers` subscribed to `topic`. */
export async function waitForSubscribers(
  publishers: readonly { libp2p: NodusLibp2p }[],
  subscribers: readonly { libp2p: NodusLibp2p }[],
  topic: string,
): Promise<void> {
  await waitFor(
    () =>
      publishers.every((p) => {
        const seen = new Set(
          p.libp2p.services.pubsub?.getSubscribers(GOSSIP_TOPIC_PREFIX + topic).map((x) => x.toString()),
        )
        return subscribers.every((s) => s === p || seen.has(s.libp2p.peerId.toString()))
      }),
    { timeoutMs: 10_000, what: `subscribers of ${topic}` },
  )
}

/** A counter's value (sum over its labels, or the one with `labels`). */
export async function counter(
  metrics: NodusMetrics,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name)
  if (m === undefined) throw new Error(`no metric ${name}`)
  let sum = 0
  for (const v of m.values as { value: number; labels: Record<string, string> }[]) {
    if (Object.entries(labels).every(([k, l]) => v.labels[k] === l)) sum += v.value
  }
  return sum
}
