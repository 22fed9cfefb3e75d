/**
 * In-process peers for the direct-message tests: each a real libp2p host (TCP, Noise, Yamux, kad-dht
 * with the key-record namespace) and the messaging area's direct messages on a temp data directory
 * (LMDB, key files), sharing one fake clock. A peer can be stopped and started again on the same
 * identity and data directory (a restart).
 */
import { mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import type { Clock } from '../../src/common/clock.ts'
import { stopAll } from '../../src/common/lifecycle.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { systemRandom } from '../../src/common/random.ts'
import { parseConfig } from '../../src/config/index.ts'
import { generateIdentity, type NodeIdentity } from '../../src/crypto/index.ts'
import {
  createDirectMessaging,
  type DirectMessaging,
  KEY_RECORD_DHT_NAMESPACE,
  keyRecordSelector,
  keyRecordValidator,
  type MessagingOptions,
} from '../../src/messaging/index.ts'
import { createMessagingMetrics, type MessagingMetrics } from '../../src/messaging/metrics.ts'
import { createHost, DEFAULT_HOST_OPTIONS, type NodusLibp2p } from '../../src/net/index.ts'
import { waitFor } from '../utils/wait.ts'

export interface DirectPeer {
  id: NodeIdentity
  dataDir: string
  libp2p: NodusLibp2p
  direct: DirectMessaging
  metrics: MessagingMetrics
  /** Errors reported against peers (PeerId, code). */
  reports: { peer: string; code: string }[]
  running: boolean
}

/** The messaging options of the tests: the defaults with `overrides`. */
export function directOptions(overrides: Partial<MessagingOptions> = {}): MessagingOptions {
  return { ...parseConfig({ dataDir: '/nonexistent' }).messaging, ...overrides }
}

async function build(
  id: NodeIdentity,
  dataDir: string,
  clock: Clock,
  options: MessagingOptions,
): Promise<DirectPeer> {
  const libp2p = await createHost(id.ed25519, DEFAULT_HOST_OPTIONS, {
    dhtRecords: {
      validators: { [KEY_RECORD_DHT_NAMESPACE]: keyRecordValidator(clock) },
      selectors: { [KEY_RECORD_DHT_NAMESPACE]: keyRecordSelector() },
    },
  })
  const metrics = createMessagingMetrics(new Registry(), () => undefined)
  const reports: DirectPeer['reports'] = []
  const direct = createDirectMessaging(
    {
      logger: silentLogger(),
      clock,
      random: systemRandom,
      metrics,
      identity: id,
      dataDir,
      host: libp2p,
      peers: {
        isBanned: () => false,
        report: (peer, err) => reports.push({ peer, code: (err as { code?: string }).code ?? 'ERROR' }),
      },
    },
    options,
  )
  const peer: DirectPeer = { id, dataDir, libp2p, direct, metrics, reports, running: false }
  await libp2p.start()
  await direct.beforeStart()
  await direct.start()
  peer.running = true
  return peer
}

/** Start a peer (a new identity and data directory unless given: a restart). Background rounds are not started: tests call them. */
export async function startDirectPeer(
  clock: Clock,
  options: MessagingOptions,
  from?: { id: NodeIdentity; dataDir: string },
): Promise<DirectPeer> {
  const id = from?.id ?? (await generateIdentity())
  const dataDir = from?.dataDir ?? mkdtempSync(join(tmpdir(), 'nodus-direct-'))
  return build(id, dataDir, clock, options)
}

/** Stop a peer's direct messages and host (its data directory stays). */
export async function stopDirectPeer(p: DirectPeer): Promise<void> {
  if (!p.running) return
  p.running = false
  await stopAll([p.direct])
  await p.libp2p.stop()
}

/** Connect every pair of running peers and wait until each routing table holds every other one. */
export async function mesh(peers: DirectPeer[]): Promise<void> {
  const up = peers.filter((p) => p.running)
  for (let i = 0; i < up.length; i++)
    for (let j = i + 1; j < up.length; j++)
      await (up[i] as DirectPeer).libp2p.dial((up[j] as DirectPeer).libp2p.getMultiaddrs())
  const size = (p: DirectPeer): number =>
    (p.libp2p.services.dht as unknown as { routingTable: { size: number } }).routingTable.size
  await waitFor(() => up.every((p) => size(p) >= up.length - 1), {
    timeoutMs: 20_000,
    what: 'every routing table to hold every peer',
  })
}

/** Stop every peer and remove the data directories. */
export async function stopDirectPeers(peers: DirectPeer[]): Promise<void> {
  await Promise.all(peers.map((p) => stopDirectPeer(p)))
  await Promise.all(peers.map((p) => rm(p.dataDir, { recursive: true, force: true })))
}
