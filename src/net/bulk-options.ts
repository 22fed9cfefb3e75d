/** Settings of the bulk channel (bulk.ts), shared by its server side and its client side. */

export interface BulkOptions {
  /** Address the TLS listener binds, e.g. `127.0.0.1` or `0.0.0.0`. Default `127.0.0.1`. */
  host: string
  /** TCP port of the TLS listener; 0 picks a free one. Default 0. */
  port: number
  /** Sockets a client opens to one peer (requests are spread over them). Default 4. */
  maxSocketsPerPeer: number
  /** Inbound sockets accepted in all (and at most 2 × maxSocketsPerPeer from one peer). Default 256. */
  maxInboundSockets: number
  /** Largest request or response body, bytes. Default 17 MiB. */
  maxBodyBytes: number
  /**
   * Bytes received on all inbound sockets and not yet handled; above it every inbound socket stops
   * reading until half of it is free. Default 128 MiB.
   */
  maxInboundBufferedBytes: number
  /** An unused socket closes after this long, ms. Default 30 000. */
  idleTimeoutMs: number
  /** A ticket not used within this long expires, ms. Default 10 000. */
  ticketTtlMs: number
  /** Time allowed to dial, fetch a ticket and finish the TLS handshake, ms. Default 10 000. */
  connectTimeoutMs: number
  /** After a failed connect to a peer, use libp2p for it for this long, ms. Default 60 000. */
  retryAfterMs: number
  /**
   * A request to a peer with no open socket waits for the first one to be keyed, until this long after
   * the connect began, before it goes over libp2p instead, ms. Keying takes a libp2p round trip and a TLS handshake; a shard sent
   * over libp2p meanwhile costs 3–4× the CPU (Noise, Yamux, copies). 0: never wait. Default 1 000.
   */
  keyingWaitMs: number
}

export const DEFAULT_BULK_OPTIONS: Readonly<BulkOptions> = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  maxSocketsPerPeer: 4,
  maxInboundSockets: 256,
  maxBodyBytes: 17 * 1024 * 1024,
  maxInboundBufferedBytes: 128 * 1024 * 1024,
  idleTimeoutMs: 30_000,
  ticketTtlMs: 10_000,
  connectTimeoutMs: 10_000,
  retryAfterMs: 60_000,
  keyingWaitMs: 1_000,
})
