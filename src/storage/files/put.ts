/**
 * The put side of files: segment, erasure-code, address, place and transfer a file's shards under
 * signed storage orders, store the signed manifest with the peers responsible for it, then commit
 * (DESIGN.md, "Storing a file"); and the placement of one repaired shard.
 */
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { withDeadline } from '../../common/abort.ts'
import { BufferPool } from '../../common/buffer-pool.ts'
import { NodusError } from '../../common/errors.ts'
import { Blake3Stream, blake3 } from '../../crypto/index.ts'
import { cidFromDigest, cidToString, parseCid, RAW_CODEC } from '../codec/cid.ts'
import { segment } from '../codec/segmenter.ts'
import { closestTo } from '../keeper/responsibility.ts'
import { placeShards } from '../placement/placement.ts'
import { MAX_RECORD_CIDS, signCommit, signOrder } from '../protocol/orders.ts'
import { codec, errCode, errFields, FilePart, type PutOptions, type PutResult } from './context.ts'
import { type Manifest, type ManifestSegment, type SignedManifest, signManifest } from './manifest.ts'

/**
 * A stored segment while its put runs: the shard CIDs packed end to end in one buffer (they all have
 * the same length) and each shard's holder. A CID object with its digest and views costs about 0.6 KB
 * of heap, kept for the whole put: 1.35 MB per GB of file with RS(4,2) and 1 MiB shards, which V8
 * promotes and sizes its heap by (docs/benchmarks-history.md, "Session 7"). Unpacked once the put is done.
 */
interface PackedSegment {
  size: number
  shardSize: number
  /** Shard CIDs, `cidLength` bytes each, k data then m parity. */
  cids: Uint8Array
  cidLength: number
  holders: string[]
}

function packSegment(size: number, shardSize: number, cids: CID[], holders: string[]): PackedSegment {
  const cidLength = cids[0]?.bytes.byteLength ?? 0
  const packed = new Uint8Array(cidLength * cids.length)
  cids.forEach((cid, j) => {
    if (cid.bytes.byteLength !== cidLength) {
      throw new NodusError('CID_INVALID', 'shard CIDs of one segment differ in length', {
        details: { cid: cidToString(cid), cidLength },
      })
    }
    packed.set(cid.bytes, j * cidLength)
  })
  return { size, shardSize, cids: packed, cidLength, holders }
}

function unpackSegment(p: PackedSegment): ManifestSegment {
  return {
    size: p.size,
    shardSize: p.shardSize,
    shards: p.holders.map((holder, j) => ({
      cid: parseCid(p.cids.subarray(j * p.cidLength, (j + 1) * p.cidLength)),
      holders: [holder],
    })),
  }
}

/** What the storage orders of one put (a segment, a manifest, a repaired shard) say; orders signed per holder. */
interface OrderTerms {
  cids: CID[]
  maxBytes: number
  expiresAt: number
  manifest: CID | undefined
  orders: Map<string, Promise<Uint8Array>>
}

/** Puts files (`FileService.put`) and places repaired shards (`FileService.placeShard`). */
export class FileUploader extends FilePart {
  /** `FileService.put`, without the transfer count. */
  async put(source: AsyncIterable<Uint8Array>, options: PutOptions): Promise<PutResult> {
    const { k, m, segmentSize } = this.options
    const ac = new AbortController()
    const signal = options.signal === undefined ? ac.signal : AbortSignal.any([options.signal, ac.signal])
    // What holders are told: the pin's expiry, or a lease the pinner renews.
    const holderExpiry = options.expiresAt ?? this.clock.now() + this.options.leaseMs
    const hasher = new Blake3Stream()
    const packed: PackedSegment[] = []
    const inflight = new Set<Promise<void>>()
    // Segments and parity shards whose put has finished are reused for the next segments (fresh
    // memory costs a page fault per 4 KiB and counts toward V8's external-memory GC trigger).
    const shardBytes = Math.ceil(segmentSize / k)
    const buffers = new BufferPool({
      maxBytes: (this.options.segmentsInFlight + 1) * (k + m) * shardBytes,
      minSize: 1,
    })
    let firstError: unknown
    let fileSize = 0
    let done = 0
    let index = 0
    try {
      for await (const seg of segment(
        source,
        segmentSize,
        k,
        signal,
        (n) => buffers.take(n),
        options.releaseChunks === true,
      )) {
        if (firstError !== undefined) break
        hasher.update(seg.data.subarray(0, seg.size))
        fileSize += seg.size
        const i = index++
        const p: Promise<void> = this.#putSegment(i, seg.data, seg.size, signal, holderExpiry, buffers).then(
          (s) => {
            packed[i] = s
            done++
            options.onProgress?.({ bytes: Math.min(done * segmentSize, fileSize), segments: done })
          },
          (err: unknown) => {
            firstError ??= err
            ac.abort(err)
          },
        )
        inflight.add(p)
        void p.finally(() => inflight.delete(p))
        while (inflight.size >= this.options.segmentsInFlight) await Promise.race(inflight)
      }
    } catch (err) {
      firstError ??= err
      ac.abort(err)
    }
    await Promise.all(inflight)
    buffers.clear()
    if (firstError !== undefined) {
      this.deps.metrics?.fileOps.inc({ op: 'put', result: errCode(firstError) })
      throw firstError
    }
    options.onProgress?.({ bytes: fileSize, segments: done })

    const segments = packed.map(unpackSegment)
    packed.length = 0
    const manifest: Manifest = {
      version: 1,
      name: options.name,
      fileSize,
      fileBlake3: hasher.digest(),
      k,
      m,
      segmentSize,
      segments,
      uploader: { peerId: this.deps.selfPeerId, publicKey: this.deps.publicKey },
      createdAt: this.clock.now(),
      revision: 1,
    }
    const signed = await signManifest(manifest, (msg) => this.deps.sign(msg))
    const manifestHolders = await this.#storeManifest(signed, signal, holderExpiry)
    // Holders kept every block provisionally: the commit names the manifest and makes them leases.
    const byHolder = new Map<string, CID[]>()
    for (const h of manifestHolders) byHolder.set(h, [signed.cid])
    for (const seg of segments) {
      for (const sh of seg.shards) {
        for (const h of sh.holders) {
          const list = byHolder.get(h) ?? []
          list.push(sh.cid)
          byHolder.set(h, list)
        }
      }
    }
    await this.#commit(signed.cid, byHolder, holderExpiry, signal)
    this.deps.logger.info(
      {
        cid: cidToString(signed.cid),
        bytes: fileSize,
        segments: segments.length,
        manifestHolders: manifestHolders.length,
      },
      'file stored',
    )
    return { cid: signed.cid, manifest, manifestHolders }
  }

  async #putSegment(
    index: number,
    data: Uint8Array,
    size: number,
    signal: AbortSignal,
    expiresAt: number,
    buffers: BufferPool,
  ): Promise<PackedSegment> {
    const { k, m } = this.options
    const shardSize = data.byteLength / k
    const shards: Uint8Array[] = []
    for (let i = 0; i < k; i++) shards.push(data.subarray(i * shardSize, (i + 1) * shardSize))
    // Encoding overwrites every parity byte, so reused memory needs no clearing.
    for (let i = 0; i < m; i++) shards.push(buffers.take(shardSize))
    const t0 = performance.now()
    codec(k, m).encode(shards)
    this.deps.metrics?.erasureSeconds.observe({ op: 'encode' }, (performance.now() - t0) / 1000)
    const cids = shards.map((s) => cidFromDigest(blake3(s), RAW_CODEC))
    const candidates = this.deps.peers.candidates().map((p) => p.toString())
    const pool = candidates.length > 0 ? candidates : [this.deps.selfPeerId]
    if (candidates.length < k + m) {
      this.deps.logger.warn(
        { candidates: candidates.length, need: k + m },
        'fewer peers than shards: some peers get several',
      )
    }
    const chosen =
      this.deps.place !== undefined && candidates.length > 0
        ? this.deps.place(pool, k + m, index, shardSize)
        : placeShards(pool, k + m, index)
    const used = new Set<string>()
    const terms = this.#terms(cids, shardSize, expiresAt, undefined)
    const holders = await Promise.all(
      shards.map((shard, j) =>
        this.#putShard(cids[j] as CID, shard, chosen[j] as string, pool, used, signal, terms),
      ),
    )
    // Every shard is stored and acknowledged: no transfer still reads these bytes. (After a failure
    // some transfers may still be running, so their memory is left to the garbage collector.)
    buffers.give(data)
    for (let i = k; i < k + m; i++) buffers.give(shards[i] as Uint8Array)
    return packSegment(size, shardSize, cids, holders)
  }

  /** Terms of the storage orders for blocks `cids`: signed per holder on first use (see {@link #orderFor}). */
  #terms(cids: CID[], maxBytes: number, expiresAt: number, manifest: CID | undefined): OrderTerms {
    return { cids, maxBytes, expiresAt, manifest, orders: new Map() }
  }

  /** The storage order for `holder` under `terms` (orders.ts), signed once per holder. */
  #orderFor(terms: OrderTerms, holder: string): Promise<Uint8Array> {
    let order = terms.orders.get(holder)
    if (order === undefined) {
      order = signOrder(
        {
          uploader: this.deps.selfPeerId,
          holder,
          cids: terms.cids,
          maxBytes: terms.maxBytes,
          expiresAt: terms.expiresAt,
          issuedAt: this.clock.now(),
          ...(terms.manifest === undefined ? {} : { manifest: terms.manifest }),
        },
        this.deps.signEd25519,
      )
      terms.orders.set(holder, order)
    }
    return order
  }

  async #putShard(
    cid: CID,
    bytes: Uint8Array,
    first: string,
    pool: string[],
    used: Set<string>,
    signal: AbortSignal,
    terms: OrderTerms,
  ): Promise<string> {
    used.add(first)
    let peer = first
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted()
      try {
        if (peer === this.deps.selfPeerId) {
          await this.deps.store.put(cid, bytes, { signal, expiresAt: terms.expiresAt })
        } else {
          const t0 = performance.now()
          try {
            const order = await this.#orderFor(terms, peer)
            // A shard placed by repair (its order names the manifest) goes in the holder's repair slots.
            const repair = terms.manifest !== undefined
            await this.deps.client.put(this.ctx.peerId(peer), cid, bytes, {
              signal,
              order,
              ...(repair ? { repair } : {}),
            })
          } catch (err) {
            if (!signal.aborted) {
              const ms = performance.now() - t0
              this.deps.observer?.transfer(peer, 'put', { ok: false, ...errFields(err), bytes: 0, ms })
            }
            throw err
          }
          this.deps.observer?.transfer(peer, 'put', {
            ok: true,
            bytes: bytes.byteLength,
            ms: performance.now() - t0,
          })
        }
        return peer
      } catch (err) {
        if (signal.aborted) throw err
        this.deps.logger.warn(
          { peer, cid: cidToString(cid), code: errCode(err), attempt },
          'shard put failed',
        )
        if (attempt >= this.options.putRetries) {
          throw new NodusError('NOT_ENOUGH_PEERS', `no peer accepted shard ${cidToString(cid)}`, {
            cause: err,
            details: { cid: cidToString(cid), attempts: attempt + 1 },
          })
        }
        const unused = pool.filter((p) => !used.has(p))
        const others = pool.filter((p) => p !== peer)
        const next = unused[0] ?? others[attempt % Math.max(1, others.length)] ?? peer
        used.add(next)
        peer = next
      }
    }
  }

  async #storeManifest(signed: SignedManifest, signal: AbortSignal, expiresAt: number): Promise<string[]> {
    await this.deps.store.put(signed.cid, signed.bytes, { signal, expiresAt })
    this.deps.onManifestStored?.(signed.cid)
    const holders = [this.deps.selfPeerId]
    // The manifest goes to the peers responsible for it: the closest to its CID in XOR distance.
    const peers = this.deps.peers.candidates()
    const byId = new Map(peers.map((p) => [p.toString(), p]))
    const targets = closestTo(signed.cid.bytes, [...byId.keys()])
      .slice(0, this.options.manifestReplicas)
      .map((id) => byId.get(id) as PeerId)
    const terms = this.#terms([signed.cid], signed.bytes.byteLength, expiresAt, undefined)
    const results = await Promise.allSettled(
      targets.map(async (p) =>
        this.deps.client.put(p, signed.cid, signed.bytes, {
          signal,
          order: await this.#orderFor(terms, p.toString()),
        }),
      ),
    )
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') holders.push((targets[i] as PeerId).toString())
      else
        this.deps.logger.warn(
          { peer: targets[i]?.toString(), code: errCode(r.reason) },
          'manifest replica failed',
        )
    })
    if (peers.length === 0) return holders // no DHT to announce to
    try {
      using deadline = withDeadline(signal, this.options.dhtTimeoutMs, 'manifest provide')
      await this.deps.peers.provide(signed.cid, { signal: deadline.signal })
    } catch (err) {
      this.deps.logger.warn(
        { cid: cidToString(signed.cid), code: errCode(err) },
        'manifest provide failed; replicas still hold it',
      )
    }
    return holders
  }

  /**
   * Send every holder (other than this node) a signed commit of `manifest` for its blocks, so it keeps
   * them until `expiresAt` instead of for the provisional lease; one retry per holder. A holder that
   * misses its commit still keeps the blocks for the provisional lease, and the next pin renewal (which
   * names the manifest) commits them. Never throws but for cancellation; failures are logged.
   */
  async #commit(
    manifest: CID,
    byHolder: Map<string, CID[]>,
    expiresAt: number,
    signal: AbortSignal,
  ): Promise<void> {
    byHolder.delete(this.deps.selfPeerId)
    let failed = 0
    await Promise.all(
      [...byHolder.entries()].map(async ([holder, cids]) => {
        for (let i = 0; i < cids.length; i += MAX_RECORD_CIDS) {
          const batch = cids.slice(i, i + MAX_RECORD_CIDS)
          for (let attempt = 0; attempt < 2; attempt++) {
            try {
              const commit = await signCommit(
                {
                  uploader: this.deps.selfPeerId,
                  holder,
                  manifest,
                  cids: batch,
                  expiresAt,
                  issuedAt: this.clock.now(),
                },
                this.deps.signEd25519,
              )
              await this.deps.client.commit(this.ctx.peerId(holder), commit, batch.length, { signal })
              break
            } catch (err) {
              if (signal.aborted) throw err
              if (attempt === 1) {
                failed++
                this.deps.logger.warn(
                  { peer: holder, code: errCode(err) },
                  'commit failed; the holder keeps the blocks provisionally',
                )
              }
            }
          }
        }
      }),
    )
    if (failed > 0) this.deps.metrics?.fileOps.inc({ op: 'commit', result: 'failed' })
  }

  /** `FileService.placeShard`. */
  async placeShard(
    cid: CID,
    bytes: Uint8Array,
    exclude: ReadonlySet<string>,
    options: { signal: AbortSignal; expiresAt?: number; manifest?: CID },
  ): Promise<string> {
    const pool = this.deps.peers
      .candidates()
      .map((p) => p.toString())
      .filter((p) => !exclude.has(p))
    if (pool.length === 0) throw new NodusError('NOT_ENOUGH_PEERS', 'no peer left to hold a repaired shard')
    const start = Number.parseInt(cidToString(cid).slice(-6), 32) % pool.length
    const first = pool[Number.isNaN(start) ? 0 : start] as string
    const expiresAt = options.expiresAt ?? this.clock.now() + this.options.leaseMs
    // The order names the manifest, so the new holder keeps the shard as a lease at once (no commit).
    const terms = this.#terms([cid], bytes.byteLength, expiresAt, options.manifest)
    return await this.#putShard(cid, bytes, first, pool, new Set(exclude), options.signal, terms)
  }
}
