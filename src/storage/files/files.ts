/**
 * Put and get of whole files: segment, erasure-code, address, place, transfer, manifest (DESIGN.md,
 * "Storing a file"), and the reverse with verification, hedging and in-order streaming. `FileService`
 * is the public face; the work is in put.ts, get.ts, manifests.ts and pins.ts, which share the deps
 * and options through `FileContext` (context.ts).
 */
import type { CID } from 'multiformats/cid'
import { NodusError } from '../../common/errors.ts'
import {
  FileContext,
  type FileServiceDeps,
  type FileServiceOptions,
  type GetOptions,
  type PutOptions,
  type PutResult,
} from './context.ts'
import { FileDownloader } from './get.ts'
import type { Manifest, SignedManifest } from './manifest.ts'
import { ManifestResolver } from './manifests.ts'
import { FilePinner } from './pins.ts'
import { FileUploader } from './put.ts'

export {
  DEFAULT_FILE_OPTIONS,
  type FileLocalStore,
  type FilePeers,
  type FileProgress,
  type FileServiceDeps,
  type FileServiceOptions,
  type FileShardClient,
  type PutResult,
} from './context.ts'
export { UNREACHABLE_MEMORY_MS } from './get.ts'

/** Puts files into the network and gets them back. */
export class FileService {
  readonly #uploader: FileUploader
  readonly #downloader: FileDownloader
  readonly #manifests: ManifestResolver
  readonly #pinner: FilePinner
  #transfers = 0

  constructor(deps: FileServiceDeps, options: FileServiceOptions) {
    if (options.k < 1 || options.m < 0 || options.k + options.m > 256) {
      throw new NodusError('CONFIG_INVALID', 'need 1 ≤ k and k + m ≤ 256', {
        details: { k: options.k, m: options.m },
      })
    }
    const ctx = new FileContext(deps, options)
    this.#manifests = new ManifestResolver(ctx)
    this.#uploader = new FileUploader(ctx)
    this.#downloader = new FileDownloader(ctx, this.#manifests)
    this.#pinner = new FilePinner(ctx, this.#manifests)
  }

  /** Puts and gets running on this node now (background work such as announcing waits for 0). */
  get transfers(): number {
    return this.#transfers
  }

  /**
   * Store a file read from `source`, streamed in segments; resolves with the manifest CID.
   * Memory is bounded by `segmentsInFlight` segments. Throws NOT_ENOUGH_PEERS when a shard finds no
   * home, ABORTED/TIMEOUT on cancellation.
   */
  async put(source: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    this.#transfers++
    try {
      return await this.#uploader.put(source, options)
    } finally {
      this.#transfers--
    }
  }

  /**
   * Pin a stored file until `expiresAt` (ms since the epoch; undefined: for one lease, `leaseMs`,
   * which the pinning node renews): every holder of its shards and every keeper of its manifest is
   * asked to keep them at least that long. A shard's expiry is the
   * latest of its pins, so this never shortens another pin. Resolves with the counts of shard copies
   * extended and of holders that could not be reached.
   */
  pin(
    cid: CID,
    expiresAt: number | undefined,
    options: { signal?: AbortSignal; manifest?: SignedManifest; critical?: boolean; grant?: Uint8Array } = {},
  ): Promise<{ extended: number; missing: number; unreachable: number }> {
    return this.#pinner.pin(cid, expiresAt, options)
  }

  /**
   * Find, fetch and verify a signed manifest: from the local store, else from the first connected peers
   * or DHT providers to send one that verifies (manifest-race.ts). `warm`: a get follows, so bulk
   * sockets to likely shard holders are keyed meanwhile (`warmPeers`). Throws MANIFEST_NOT_FOUND,
   * MANIFEST_INVALID, SIGNATURE_INVALID.
   */
  resolveManifest(cid: CID, options: { signal?: AbortSignal; warm?: boolean } = {}): Promise<SignedManifest> {
    return this.#manifests.resolveManifest(cid, options)
  }

  /**
   * Stream the file with manifest `cid`, segment by segment in order, as views of the verified data
   * shards (not copied). Each part is the caller's alone: shards from this node's own store are
   * copies (ShardStore.get), the rest were received or rebuilt for this call, so the caller may free a
   * part's memory once done with it (`freeIfWhole`, as the HTTP API does). Every shard is checked against
   * its CID, each segment decodes from the first k shards to arrive, and for a whole-file read the
   * BLAKE3 of the file is checked at the end (throws CID_MISMATCH if it differs). `range` selects
   * bytes [offset, offset + length) and fetches only the segments that hold them. Throws
   * DECODE_FAILED when a segment has fewer than k reachable shards, INVALID_ARGUMENT for a range
   * outside the file.
   */
  async *get(cid: CID, options: GetOptions = {}): AsyncGenerator<Uint8Array> {
    this.#transfers++
    try {
      yield* this.#downloader.get(cid, options)
    } finally {
      this.#transfers--
    }
  }

  /**
   * Fetch k shards of segment `index` and rebuild its shards (for repair): rows 0..k+parity−1, where
   * `parity` defaults to the parity shards the segment lists now (m plus any extra); a larger value
   * computes new parity rows (dynamic redundancy), a smaller one drops the last. The k+m shards the
   * uploader signed are checked against their CIDs; if that fails while extra parity was used, the
   * segment is rebuilt again from signed shards alone. Extra parity rows are returned as computed:
   * the caller compares their CIDs with the listed ones (a wrong one is replaced).
   *
   * @throws NodusError DECODE_FAILED when fewer than k shards are reachable or the signed shards do not
   *   match their CIDs; ERASURE_INVALID when k + parity > 256 or parity < m
   */
  rebuildSegment(
    man: Manifest,
    index: number,
    options: { signal: AbortSignal; parity?: number },
  ): Promise<Uint8Array[]> {
    return this.#downloader.rebuildSegment(man, index, options)
  }

  /**
   * Store one shard on a connected peer not in `exclude` (trying up to `putRetries` of them).
   * Resolves with the new holder's PeerId. Throws NOT_ENOUGH_PEERS.
   */
  placeShard(
    cid: CID,
    bytes: Uint8Array,
    exclude: ReadonlySet<string>,
    options: { signal: AbortSignal; expiresAt?: number; manifest?: CID },
  ): Promise<string> {
    return this.#uploader.placeShard(cid, bytes, exclude, options)
  }
}
