/**
 * The get side of files: stream a file segment by segment in order, each segment decoded from the
 * first k verified shards to arrive (local first, then holders, hedged, then DHT providers); and the
 * rebuild of a segment's shards for repair.
 */
import type { CID } from 'multiformats/cid'
import { withDeadline } from '../../common/abort.ts'
import { bytesEqual } from '../../common/bytes.ts'
import { NodusError } from '../../common/errors.ts'
import { Blake3Stream, blake3 } from '../../crypto/index.ts'
import { cidToString } from '../codec/cid.ts'
import { codec, errCode, errFields, type FileContext, FilePart, type GetOptions } from './context.ts'
import type { Manifest, ManifestSegment } from './manifest.ts'
import type { ManifestResolver } from './manifests.ts'

/**
 * How long a peer that answered a shard get with PEER_UNREACHABLE goes to the back of later segments'
 * request orders, ms. Within one get, each segment would otherwise try the same dead holders first.
 */
export const UNREACHABLE_MEMORY_MS = 30_000
/**
 * Paced hedging: once half the shards a segment needs have arrived, after T ms, one more shard is
 * requested each further T (at least this, ms) while the segment is incomplete; the fixed
 * `hedgeDelayMs` hedge still runs beside it. Hedged requests after the expected latency (Dean and
 * Barroso, "The Tail at Scale", CACM 56(2), 2013), the time to half the shards as the expectation: over
 * a lossy WAN a segment otherwise waits for its slowest of k shards (a lost SYN costs a 1 s RTO).
 */
export const MIN_PACED_HEDGE_MS = 50

/** Most peers remembered as unreachable (the oldest is forgotten first). */
const UNREACHABLE_MEMORY_PEERS = 4_096

/** Gets files (`FileService.get`) and rebuilds segments for repair (`FileService.rebuildSegment`). */
export class FileDownloader extends FilePart {
  readonly #manifests: ManifestResolver
  /** Peer → the clock's time of its last PEER_UNREACHABLE answer to a shard get (see UNREACHABLE_MEMORY_MS). */
  readonly #unreachable = new Map<string, number>()

  constructor(ctx: FileContext, manifests: ManifestResolver) {
    super(ctx)
    this.#manifests = manifests
  }

  /** `FileService.get`, without the transfer count. */
  async *get(cid: CID, options: GetOptions): AsyncGenerator<Uint8Array> {
    const ac = new AbortController()
    const signal = options.signal === undefined ? ac.signal : AbortSignal.any([options.signal, ac.signal])
    const signed = options.manifest ?? (await this.#manifests.resolveManifest(cid, { signal, warm: true }))
    const man = signed.manifest
    const range = options.range ?? { offset: 0, length: man.fileSize }
    if (range.offset < 0 || range.length < 0 || range.offset + range.length > man.fileSize) {
      throw new NodusError('INVALID_ARGUMENT', 'range outside the file', {
        details: { ...range, fileSize: man.fileSize },
      })
    }
    const whole = range.offset === 0 && range.length === man.fileSize
    const end = range.offset + range.length
    const first = Math.floor(range.offset / man.segmentSize)
    const last = range.length === 0 ? first - 1 : Math.floor((end - 1) / man.segmentSize)
    const hasher = whole ? new Blake3Stream() : undefined
    const ahead: Promise<Uint8Array[]>[] = []
    let next = first
    let bytes = 0
    // Bulk sockets (and libp2p connections) to the holders of the segments about to be fetched are
    // opened ahead, parity holders too, so a hedged or fallback request finds its peer ready.
    const warmed = new Set<string>([this.deps.selfPeerId])
    const warmAhead = (index: number): void => {
      const warm = this.deps.client.warm
      const seg = man.segments[index]
      if (warm === undefined || seg === undefined) return
      for (const s of seg.shards) {
        const h = s.holders[0]
        if (h === undefined || warmed.has(h) || warmed.size > this.options.warmPeers * 2) continue
        warmed.add(h)
        warm.call(this.deps.client, this.ctx.peerId(h))
      }
    }
    const launch = (): void => {
      while (next <= last && ahead.length < this.options.segmentsInFlight) {
        warmAhead(next)
        warmAhead(next + 1)
        const p = this.#getSegment(man, man.segments[next] as ManifestSegment, next, signal)
        p.catch(() => {})
        ahead.push(p)
        next++
      }
    }
    const t0 = performance.now()
    try {
      launch()
      for (let i = first; i <= last; i++) {
        const parts = await (ahead.shift() as Promise<Uint8Array[]>)
        if (i === first) {
          const s = (performance.now() - t0) / 1000
          this.deps.metrics?.getPhaseSeconds?.observe({ phase: 'first_segment' }, s)
        }
        launch()
        let partStart = i * man.segmentSize
        for (const segPart of parts) {
          hasher?.update(segPart)
          let part = segPart
          if (!whole) {
            const from = Math.max(0, range.offset - partStart)
            const to = Math.min(segPart.byteLength, end - partStart)
            part = segPart.subarray(from, Math.max(from, to))
          }
          partStart += segPart.byteLength
          if (part.byteLength === 0) continue
          bytes += part.byteLength
          this.deps.metrics?.fileBytes.inc({ direction: 'get' }, part.byteLength)
          yield part
        }
        options.onProgress?.({ bytes, segments: i - first + 1 })
      }
    } finally {
      ac.abort(new NodusError('ABORTED', 'get finished or abandoned'))
    }
    this.deps.metrics?.fileOps.inc({ op: 'get', result: 'ok' })
    if (hasher !== undefined && !bytesEqual(hasher.digest(), man.fileBlake3)) {
      throw new NodusError('CID_MISMATCH', 'file hash does not match the manifest', {
        details: { cid: cidToString(cid) },
      })
    }
  }

  /**
   * Gather at least k verified shards of a segment (local first, then peers). With `signedOnly`, the
   * extra parity shards of a holder update (not signed by the uploader) are left out. Throws
   * DECODE_FAILED.
   */
  async #collectShards(
    man: Manifest,
    seg: ManifestSegment,
    index: number,
    outer: AbortSignal,
    signedOnly = false,
    repair = false,
  ): Promise<(Uint8Array | null)[]> {
    const k = man.k
    const n = signedOnly ? k + man.m : seg.shards.length
    if (signedOnly) seg = { ...seg, shards: seg.shards.slice(0, n) }
    const got: (Uint8Array | null)[] = new Array(n).fill(null)
    let have = 0
    const local = seg.shards.map((s) => this.deps.store.has(s.cid))
    // Local shards first, no network.
    for (let j = 0; j < n && have < k; j++) {
      if (local[j] === true) {
        try {
          got[j] = await this.deps.store.get((seg.shards[j] as { cid: CID }).cid, { signal: outer })
          have++
        } catch {
          // fall through to the network
        }
      }
    }
    if (have < k) await this.#fetchShards(seg, got, k - have, index, outer, repair)
    have = got.filter((s) => s !== null).length
    if (have < k) {
      throw new NodusError('DECODE_FAILED', `segment ${index}: ${have} of ${k} shards reachable`, {
        details: { segment: index, have, need: k },
      })
    }
    return got
  }

  /** `FileService.rebuildSegment`. */
  async rebuildSegment(
    man: Manifest,
    index: number,
    options: { signal: AbortSignal; parity?: number },
  ): Promise<Uint8Array[]> {
    const seg = man.segments[index]
    if (seg === undefined) throw new NodusError('INVALID_ARGUMENT', `no segment ${index}`)
    const parity = options.parity ?? seg.shards.length - man.k
    if (parity < man.m || man.k + parity > 256) {
      throw new NodusError(
        'ERASURE_INVALID',
        `cannot rebuild ${parity} parity shards of RS(${man.k},${man.m})`,
      )
    }
    const attempt = async (signedOnly: boolean): Promise<Uint8Array[]> => {
      // Repair traffic: holders serve it from slots uploads cannot take.
      const got = await this.#collectShards(man, seg, index, options.signal, signedOnly, true)
      const usedExtra = got.some((s, j) => s !== null && j >= man.k + man.m)
      // Rows of our code do not depend on m (redundancy.ts), so RS(k, max) rebuilds any subset.
      const width = Math.max(got.length, man.k + parity)
      const input = [...got, ...new Array<null>(width - got.length).fill(null)]
      const t0 = performance.now()
      const all = codec(man.k, width - man.k).reconstruct(input)
      this.deps.metrics?.erasureSeconds.observe({ op: 'decode' }, (performance.now() - t0) / 1000)
      for (let j = 0; j < man.k + man.m; j++) {
        const want = (seg.shards[j] as { cid: CID }).cid.multihash.digest
        if (!bytesEqual(blake3(all[j] as Uint8Array), want)) {
          if (usedExtra) return await attempt(true)
          throw new NodusError('DECODE_FAILED', `segment ${index} shard ${j} rebuilt with the wrong hash`)
        }
      }
      return all.slice(0, man.k + parity)
    }
    return await attempt(false)
  }

  async #getSegment(
    man: Manifest,
    seg: ManifestSegment,
    index: number,
    outer: AbortSignal,
  ): Promise<Uint8Array[]> {
    const k = man.k
    let dataShards: (Uint8Array | null)[] = []
    for (const signedOnly of [false, true]) {
      const got = await this.#collectShards(man, seg, index, outer, signedOnly)
      dataShards = got.slice(0, k)
      if (!dataShards.some((s) => s === null)) break
      const t0 = performance.now()
      const full = codec(k, got.length - k).reconstructData(got.slice())
      this.deps.metrics?.erasureSeconds.observe({ op: 'decode' }, (performance.now() - t0) / 1000)
      dataShards = full.slice(0, k)
      // Rebuilt data shards must hash to the manifest's CIDs before a byte of them is streamed out.
      const bad = dataShards.findIndex((shard, j) => {
        if (got[j] !== null) return false
        const want = (seg.shards[j] as { cid: CID }).cid.multihash.digest
        return !bytesEqual(blake3(shard as Uint8Array), want)
      })
      if (bad < 0) break
      // Extra parity (from a holder update, not signed by the uploader) may be wrong: try without it.
      if (!signedOnly && got.some((s, j) => s !== null && j >= k + man.m)) {
        this.deps.logger.warn({ segment: index }, 'extra parity shards did not decode; retrying without them')
        continue
      }
      throw new NodusError(
        'DECODE_FAILED',
        `segment ${index}: rebuilt data shard ${bad} does not match its CID`,
        {
          details: { segment: index, shard: bad },
        },
      )
    }
    // The segment is its data shards in order, up to its size: handed out as views, not copied.
    const parts: Uint8Array[] = []
    let off = 0
    for (const s of dataShards) {
      if (off >= seg.size) break
      const part = (s as Uint8Array).subarray(0, Math.min(seg.shardSize, seg.size - off))
      parts.push(part)
      off += part.byteLength
    }
    return parts
  }

  /**
   * Fetch `need` more shards of a segment into `got`. Attempts go data shards first, each shard's
   * holders in order (holders that were unreachable in the last UNREACHABLE_MEMORY_MS last), then DHT
   * providers for shards still missing; a hedge timer adds one extra request whenever the segment is
   * slow (every hedgeDelayMs, and paced by the segment's own progress: MIN_PACED_HEDGE_MS). Resolves when `need` shards arrived or nothing is left.
   */
  async #fetchShards(
    seg: ManifestSegment,
    got: (Uint8Array | null)[],
    need: number,
    index: number,
    outer: AbortSignal,
    repair = false,
  ): Promise<void> {
    const ac = new AbortController()
    const signal = AbortSignal.any([outer, ac.signal])
    const attempts: { shard: number; peer: string }[] = []
    const maxHolders = Math.max(...seg.shards.map((s) => s.holders.length))
    for (let h = 0; h < maxHolders; h++) {
      seg.shards.forEach((s, j) => {
        const peer = s.holders[h]
        if (got[j] === null && peer !== undefined && peer !== this.deps.selfPeerId)
          attempts.push({ shard: j, peer })
      })
    }
    if (this.#unreachable.size > 0) {
      // Holders unreachable in the last UNREACHABLE_MEMORY_MS go last, in their order (stable sort).
      const since = this.clock.now() - UNREACHABLE_MEMORY_MS
      const late = (a: { peer: string }): number => ((this.#unreachable.get(a.peer) ?? 0) > since ? 1 : 0)
      attempts.sort((a, b) => late(a) - late(b))
    }
    const inFlightShards = new Set<number>()
    let arrived = 0
    let active = 0
    let extra = 0
    let dhtTried = false
    const deadPeers = new Set<string>()

    const started = this.clock.now()
    let paced: NodeJS.Timeout | undefined
    await new Promise<void>((resolve) => {
      let finished = false
      const finish = (): void => {
        if (finished) return
        finished = true
        clearInterval(hedge)
        clearTimeout(paced)
        ac.abort(new NodusError('ABORTED', 'segment complete'))
        resolve()
      }
      const hedge = setInterval(() => {
        extra++
        pump()
      }, this.options.hedgeDelayMs)
      const pump = (): void => {
        if (finished) return
        if (arrived >= need || outer.aborted) {
          finish()
          return
        }
        while (active < need - arrived + extra) {
          const idx = attempts.findIndex(
            (a) => got[a.shard] === null && !inFlightShards.has(a.shard) && !deadPeers.has(a.peer),
          )
          if (idx < 0) break
          const a = attempts.splice(idx, 1)[0] as { shard: number; peer: string }
          start(a)
        }
        if (active === 0) {
          if (dhtTried) {
            finish()
            return
          }
          dhtTried = true
          active++ // the DHT look-up counts as a request in flight until it returns
          void this.#discoverHolders(seg, got, signal).then((found) => {
            active--
            attempts.push(...found)
            pump()
          })
        }
      }
      const start = (a: { shard: number; peer: string }): void => {
        active++
        inFlightShards.add(a.shard)
        const cid = (seg.shards[a.shard] as { cid: CID }).cid
        const t0 = performance.now()
        this.deps.client.get(this.ctx.peerId(a.peer), cid, { signal, ...(repair ? { repair } : {}) }).then(
          (bytes) => {
            this.deps.observer?.transfer(a.peer, 'get', {
              ok: true,
              bytes: bytes.byteLength,
              ms: performance.now() - t0,
            })
            active--
            inFlightShards.delete(a.shard)
            this.#unreachable.delete(a.peer)
            if (got[a.shard] === null && bytes.byteLength === seg.shardSize) {
              got[a.shard] = bytes
              arrived++
              if (paced === undefined && arrived * 2 >= need && arrived < need) {
                const step = Math.max(MIN_PACED_HEDGE_MS, this.clock.now() - started)
                const tick = (): void => {
                  if (finished) return
                  extra++
                  pump()
                  paced = setTimeout(tick, step)
                }
                paced = setTimeout(tick, step)
              }
            }
            pump()
          },
          (err: unknown) => {
            active--
            inFlightShards.delete(a.shard)
            if (!signal.aborted) {
              const code = errCode(err)
              this.deps.observer?.transfer(a.peer, 'get', {
                ok: false,
                ...errFields(err),
                bytes: 0,
                ms: performance.now() - t0,
              })
              if (code === 'PEER_UNREACHABLE') {
                deadPeers.add(a.peer)
                this.#unreachable.delete(a.peer)
                this.#unreachable.set(a.peer, this.clock.now())
                if (this.#unreachable.size > UNREACHABLE_MEMORY_PEERS)
                  this.#unreachable.delete(this.#unreachable.keys().next().value as string)
              }
              this.deps.logger.debug(
                { segment: index, shard: a.shard, peer: a.peer, code },
                'shard get failed',
              )
            }
            pump()
          },
        )
      }
      pump()
    })
  }

  /** Ask the DHT who provides each missing shard. Bounded by dhtTimeoutMs. */
  async #discoverHolders(
    seg: ManifestSegment,
    got: (Uint8Array | null)[],
    signal: AbortSignal,
  ): Promise<{ shard: number; peer: string }[]> {
    const found: { shard: number; peer: string }[] = []
    using dhtDeadline = withDeadline(signal, this.options.dhtTimeoutMs, 'shard provider look-up')
    const dhtSignal = dhtDeadline.signal
    await Promise.allSettled(
      seg.shards.map(async (s, j) => {
        if (got[j] !== null) return
        for await (const p of this.deps.peers.findProviders(s.cid, { signal: dhtSignal })) {
          const id = p.toString()
          if (id !== this.deps.selfPeerId && !s.holders.includes(id)) found.push({ shard: j, peer: id })
        }
      }),
    )
    return found
  }
}
