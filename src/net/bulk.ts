/**
 * The bulk channel: request/response messages with large bodies (shards) over plain TLS 1.3 sockets
 * between two nodes, next to their libp2p connection.
 *
 * Why: moving shard bytes through libp2p (Noise or @libp2p/tls, then Yamux, then a libp2p stream)
 * costs 6–10 CPU-s per GB on this hardware, against about 2 for one node:tls socket carrying the same
 * bytes (docs/BENCHMARKS.md, "dataplane"). libp2p stays in charge of identity, discovery and every
 * other protocol; the bulk channel only carries bytes between peers that libp2p has authenticated.
 *
 * Files: the keying and framing on the wire (bulk-wire.ts), the listener and inbound sockets
 * (bulk-server.ts), the pool of outbound sockets (bulk-client.ts), the settings (bulk-options.ts);
 * this file puts the two sides together as one node's channel.
 */
import type { PeerId } from '@libp2p/interface'
import { BulkClient, type BulkClientDeps, type BulkResponse } from './bulk-client.ts'
import type { BulkOptions } from './bulk-options.ts'
import { BulkServer, type BulkServerDeps } from './bulk-server.ts'

export type { BulkResponse } from './bulk-client.ts'
export { type BulkOptions, DEFAULT_BULK_OPTIONS } from './bulk-options.ts'
export type { BulkHandler, BulkReply, BulkRequest } from './bulk-server.ts'

/**
 * What the bulk channel needs from libp2p and the node: `handle` (register the ticket protocol),
 * `dialProtocol` (open a stream to a peer), `remoteHost` (the IP address of the live libp2p connection
 * to a peer, where the bulk socket goes), `handler` (answers requests from peers), `logger`; optional
 * `allocateBody` (memory for request bodies, pooled), `isBanned` (refuse a banned peer's tickets and
 * sockets), `onPeerError` (a peer's input broke the channel; the error carries its `peerAction`) and
 * `clock` (ticket expiries and retry-after times; default the system clock). Each is documented on
 * {@link BulkServerDeps} and {@link BulkClientDeps}.
 */
export interface BulkDeps extends BulkServerDeps, BulkClientDeps {}

/**
 * Both sides of the bulk channel for one node: the TLS listener with its ticket protocol, and the
 * client's pool of sockets per peer. `start()` before use, `stop()` at shutdown.
 */
export class BulkChannel {
  readonly #server: BulkServer
  readonly #client: BulkClient

  constructor(deps: BulkDeps, options: BulkOptions) {
    this.#server = new BulkServer(deps, options)
    this.#client = new BulkClient(deps, options)
  }

  /** The TLS listener's port (0 before start). */
  get port(): number {
    return this.#server.port
  }

  /** Sockets open to and from peers (for metrics and tests). */
  get sockets(): { inbound: number; outbound: number } {
    return { inbound: this.#server.sockets, outbound: this.#client.sockets }
  }

  /** Listen for TLS sockets and register the ticket protocol. */
  start(): Promise<void> {
    return this.#server.start()
  }

  /** Close the listener and every socket; pending requests fail with STREAM_CLOSED. */
  async stop(): Promise<void> {
    this.#client.stop()
    await this.#server.stop()
  }

  /**
   * Send one request to `peer` and resolve with its response. Opens (and then reuses) bulk sockets
   * to the peer as needed; while the first socket to a peer is being keyed, waits for it until
   * `keyingWaitMs` after that connect began.
   *
   * @throws NodusError BULK_UNAVAILABLE when no bulk socket to the peer is open by then
   *   or can be had (the peer does not speak the protocol, its listener is unreachable, or a connect
   *   in the last `retryAfterMs` failed): use libp2p instead
   * @throws NodusError STREAM_CLOSED when the socket closes before the response is complete
   * @throws the signal's reason when aborted (the socket is then closed, as its stream position is lost)
   */
  request(peer: PeerId, header: Uint8Array, body: Uint8Array, signal: AbortSignal): Promise<BulkResponse> {
    return this.#client.request(peer, header, body, signal)
  }

  /** False while a recent connect to `peer` failed (requests would throw BULK_UNAVAILABLE at once). */
  available(peer: PeerId): boolean {
    return this.#client.available(peer)
  }

  /** True when a keyed socket to `peer` is open: a request goes out at once. */
  isOpen(peer: PeerId): boolean {
    return this.#client.isOpen(peer)
  }

  /**
   * Key a socket to `peer` in the background unless one is open or being keyed (at most 64 such
   * connects at once); unused, it closes after `idleTimeoutMs`. Returns whether a connect started.
   */
  warm(peer: PeerId): boolean {
    return this.#client.warm(peer)
  }

  /**
   * Resolves once a connect to `peer` started by a request has finished (at once when none is in
   * progress). For tests and benchmarks that want the channel up before measuring.
   */
  settled(peer: PeerId): Promise<void> {
    return this.#client.settled(peer)
  }
}
