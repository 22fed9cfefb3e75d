/**
 * CPU cost per stage of the put and get paths, in process, on one core: what a 10 MiB segment costs
 * before and after the network. Each stage runs alone over the same file (24 segments of 10 MiB;
 * quick: 4), with the RS(10,4) layout of the demo (1 MiB shards).
 *
 *   node bench/pipeline.bench.ts [--quick]
 *
 * Every row's MB/s is 10^6 bytes of *file data* per second and its CPU s/GB is CPU seconds (user +
 * system, all threads of this process, so libuv's file-system and signing threads count) per 10^9
 * bytes of file data, whatever the stage touches (the note says: e.g. 14 shards of 1 MiB are hashed
 * and written per 10 MiB of file). So the put rows add up to the CPU a put costs per GB across the
 * network, ignoring transport, and the get rows likewise. Medians of several runs after a warm-up;
 * contenders alternate run by run. Peers: the natural alternative for the stage, or '-' when none.
 */
import { createHash, randomFillSync } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ReedSolomonErasure } from '@digitaldefiance/reed-solomon-erasure.wasm'
import type { CID } from 'multiformats/cid'
import {
  Blake3Stream,
  blake3,
  generateIdentity,
  hybridPublicKey,
  signEd25519,
  signHybrid,
} from '../src/crypto/index.ts'
import {
  cidFromDigest,
  type Manifest,
  RAW_CODEC,
  ReedSolomon,
  ShardStore,
  segment,
  signManifest,
} from '../src/storage/index.ts'
import {
  type BenchOptions,
  cpuSecPerGB,
  MiB,
  mbps,
  measure,
  peerNotInstalled,
  type Row,
  ratioOf,
  runTimed,
  type Timing,
  which,
  withTempDir,
} from './lib.ts'

export const description =
  'Put and get stages in one process on one core. MB/s and CPU s/GB count bytes of file data ' +
  '(10 MiB segments, RS(10,4), 1 MiB shards), so the put rows add up to the CPU cost of a put per GB.'

const K = 10
const M = 4
const SHARD_BYTES = MiB
const SEGMENT_BYTES = K * SHARD_BYTES
/** Chunk size of the byte streams the node sees (HTTP request bodies, yamux frames). */
const STREAM_CHUNK_BYTES = 64 * 1024
const LOST_DATA = 4
const RS_PEER = 'reed-solomon-erasure.wasm (Rust crate, @digitaldefiance/reed-solomon-erasure.wasm 1.0.2)'
const MLDSA65_SIGNATURE_BYTES = 3309

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  )
}

async function* chunksOf(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < bytes.byteLength; off += size) yield bytes.subarray(off, off + size)
}

/** Runs the benchmark and returns its rows. Throws when our output and a peer's differ. */
export async function run(options: BenchOptions): Promise<Row[]> {
  const segments = options.quick ? 4 : 24
  const fileBytes = segments * SEGMENT_BYTES
  // In-memory stages take tens of ms per pass: more runs. Disk stages take seconds: fewer.
  const opts = options.quick ? { runs: 5, warmup: 1 } : { runs: 11, warmup: 2 }
  const diskOpts = options.quick ? { runs: 2, warmup: 1 } : { runs: 5, warmup: 1 }
  const fileLabel = `${segments} × 10 MiB`
  const rows: Row[] = []
  const row = (
    name: string,
    ours: Timing,
    peer: string,
    peerTiming: Timing | undefined,
    note: string,
  ): void => {
    const o = mbps(fileBytes, ours.wallMs)
    const p = peerTiming === undefined ? null : mbps(fileBytes, peerTiming.wallMs)
    rows.push({
      name,
      ours_MBps: o,
      peer,
      peer_MBps: p,
      ratio: ratioOf(o, p),
      ours_cpuSecPerGB: cpuSecPerGB(fileBytes, ours.cpuMs),
      note,
    })
  }

  const file = new Uint8Array(fileBytes)
  for (let off = 0; off < fileBytes; off += 64 * MiB)
    randomFillSync(file, off, Math.min(64 * MiB, fileBytes - off))
  const segmentView = (s: number): Uint8Array => file.subarray(s * SEGMENT_BYTES, (s + 1) * SEGMENT_BYTES)

  // put 1: segmenting a 64 KiB-chunk stream; peer: the bare copies into fresh 10 MiB buffers.
  {
    let seen = 0
    const t = await measure(
      [
        {
          fn: async () => {
            seen = 0
            for await (const s of segment(chunksOf(file, STREAM_CHUNK_BYTES), SEGMENT_BYTES, K))
              seen += s.size
          },
        },
        {
          fn: () => {
            let buf = new Uint8Array(SEGMENT_BYTES)
            let filled = 0
            for (let off = 0; off < fileBytes; off += STREAM_CHUNK_BYTES) {
              buf.set(file.subarray(off, off + STREAM_CHUNK_BYTES), filled)
              filled += STREAM_CHUNK_BYTES
              if (filled === SEGMENT_BYTES) {
                buf = new Uint8Array(SEGMENT_BYTES)
                filled = 0
              }
            }
          },
        },
      ],
      opts,
    )
    if (seen !== fileBytes) throw new Error(`segment yielded ${seen} bytes of ${fileBytes}`)
    row(
      `put: segment (64 KiB chunks → 10 MiB), ${fileLabel}`,
      t[0] as Timing,
      'memcpy floor (Uint8Array.set into fresh 10 MiB buffers)',
      t[1],
      'async generator + one copy per byte',
    )
  }

  // put 2: whole-file BLAKE3, as FileService.put feeds each segment to a Blake3Stream.
  {
    const t = await measure(
      [
        {
          fn: () => {
            const h = new Blake3Stream()
            for (let s = 0; s < segments; s++) h.update(segmentView(s))
            h.digest()
          },
        },
      ],
      opts,
    )
    row(
      `put: whole-file BLAKE3 (Blake3Stream), ${fileLabel}`,
      t[0] as Timing,
      '-',
      undefined,
      'peer: see the blake3 rows (b3sum); the get path hashes the file again',
    )
  }

  // put 3: Reed-Solomon encode, parity allocated per segment as FileService does.
  const rs = new ReedSolomon(K, M)
  const stripes: Uint8Array[][] = []
  for (let s = 0; s < segments; s++) {
    const seg = segmentView(s)
    const shards: Uint8Array[] = []
    for (let i = 0; i < K; i++) shards.push(seg.subarray(i * SHARD_BYTES, (i + 1) * SHARD_BYTES))
    stripes.push(shards)
  }
  {
    const wasm = readFileSync(new URL(import.meta.resolve('@digitaldefiance/reed-solomon-erasure.wasm/wasm')))
    const peer = ReedSolomonErasure.fromBytes(wasm)
    const flat = new Uint8Array((K + M) * SHARD_BYTES)
    const t = await measure(
      [
        {
          fn: () => {
            for (const shards of stripes) {
              shards.length = K
              for (let i = 0; i < M; i++) shards.push(new Uint8Array(SHARD_BYTES))
              rs.encode(shards)
            }
          },
        },
        {
          fn: () => {
            for (let s = 0; s < segments; s++) {
              flat.set(segmentView(s), 0)
              if (peer.encode(flat, K, M) !== ReedSolomonErasure.RESULT_OK)
                throw new Error('peer encode failed')
            }
          },
        },
      ],
      opts,
    )
    const last = stripes[segments - 1] as Uint8Array[]
    for (let i = K; i < K + M; i++) {
      if (!sameBytes(last[i] as Uint8Array, flat.subarray(i * SHARD_BYTES, (i + 1) * SHARD_BYTES))) {
        throw new Error(`parity shard ${i} differs from the peer's`)
      }
    }
    row(
      `put: RS(10,4) encode, kernel=${rs.kernel}, ${fileLabel}`,
      t[0] as Timing,
      RS_PEER,
      t[1],
      'peer copies each segment into its buffer first, as its API requires',
    )
  }

  // put 4: BLAKE3 of each of the 14 shards (their CIDs); peer: SHA-256 of the same shards (IPFS's default).
  const cids: CID[][] = []
  {
    const t = await measure(
      [
        {
          fn: () => {
            cids.length = 0
            for (const shards of stripes) cids.push(shards.map((sh) => cidFromDigest(blake3(sh), RAW_CODEC)))
          },
        },
        {
          fn: () => {
            for (const shards of stripes) for (const sh of shards) createHash('sha256').update(sh).digest()
          },
        },
      ],
      opts,
    )
    row(
      `put: BLAKE3 CIDs of 14 shards per segment, ${fileLabel}`,
      t[0] as Timing,
      'sha256 (node:crypto) of the same shards',
      t[1],
      '14 MiB hashed per 10 MiB of file; holders hash each shard again while writing it',
    )
  }

  // put 5: manifest signing; peer: the same manifest with an Ed25519 signature only.
  const id = await generateIdentity()
  {
    const holderIds = await Promise.all(Array.from({ length: 3 }, () => generateIdentity()))
    const holders = holderIds.map((h) => h.peerId.toString())
    const manifest: Manifest = {
      version: 1,
      name: 'bench.bin',
      fileSize: fileBytes,
      fileBlake3: blake3(file.subarray(0, 1024)),
      k: K,
      m: M,
      segmentSize: SEGMENT_BYTES,
      segments: cids.map((c, s) => ({
        size: SEGMENT_BYTES,
        shardSize: SHARD_BYTES,
        shards: c.map((cid, j) => ({ cid, holders: [holders[(s + j) % holders.length] as string] })),
      })),
      uploader: { peerId: id.peerId.toString(), publicKey: hybridPublicKey(id) },
      createdAt: Date.now(),
      revision: 1,
    }
    const noMlDsa = new Uint8Array(MLDSA65_SIGNATURE_BYTES)
    const t = await measure(
      [
        { fn: () => signManifest(manifest, (msg) => signHybrid(id, msg)) },
        {
          fn: () =>
            signManifest(manifest, async (msg) => ({
              ed25519: await id.ed25519.sign(msg),
              mldsa65: noMlDsa,
            })),
        },
      ],
      { runs: opts.runs * 3, warmup: 2 },
    )
    row(
      `put: sign manifest (dag-cbor, Ed25519 + ML-DSA-65), ${fileLabel}`,
      t[0] as Timing,
      'same manifest, Ed25519 only',
      t[1],
      `once per file: ${(t[0] as Timing).wallMs.toFixed(1)} ms for ${segments * (K + M)} shard entries`,
    )
  }

  await withTempDir('pipeline', async (dir) => {
    const allShards = stripes.flat()
    const allCids = cids.flat()
    const dd = which('dd')
    const ddFile = join(dir, 'dd.bin')
    const shardCount = allShards.length
    let store: ShardStore | undefined
    let storeN = 0
    const freshStore = async (): Promise<void> => {
      await store?.close()
      rmSync(join(dir, `store-${storeN}`), { recursive: true, force: true })
      storeN++
      store = new ShardStore(
        {},
        // cacheBytes 0: measure the file path, not the store's in-memory LRU of whole shards.
        { dir: join(dir, `store-${storeN}`), capacityBytes: 2 ** 40, maxShardBytes: 16 * MiB, cacheBytes: 0 },
      )
      await store.open()
    }
    try {
      // holder 1: shard store write with fsync, as the shard server does (a 64 KiB-chunk stream).
      const t = await measure(
        [
          {
            setup: freshStore,
            fn: async () => {
              for (let i = 0; i < shardCount; i++) {
                const shard = allShards[i] as Uint8Array
                await store?.put(allCids[i] as CID, chunksOf(shard, STREAM_CHUNK_BYTES), {
                  expectedSize: shard.byteLength,
                })
              }
            },
          },
          ...(dd === undefined
            ? []
            : [
                {
                  setup: () => rmSync(ddFile, { force: true }),
                  fn: () => {
                    const r = runTimed(dd, [
                      'if=/dev/zero',
                      `of=${ddFile}`,
                      'bs=1M',
                      `count=${shardCount}`,
                      'oflag=direct',
                      'conv=fsync',
                    ])
                    if (r.status !== 0) throw new Error(`dd failed: ${r.stderr.trim()}`)
                  },
                },
              ]),
        ],
        diskOpts,
      )
      row(
        `holder: shard store write + fsync (ShardStore.put, 1 MiB shards), ${fileLabel}`,
        t[0] as Timing,
        dd === undefined
          ? peerNotInstalled('coreutils')
          : `dd bs=1M count=${shardCount} oflag=direct conv=fsync (one file)`,
        t[1],
        '14 shards per 10 MiB of file, one at a time; each: hash while writing, fsync, rename, dir fsync, LMDB commit',
      )

      // holder 2: receipt signature per stored shard (ShardServer signs one per put, Ed25519 through
      // node:crypto with the OpenSSL key object kept, as src/node/node.ts wires it).
      const receipt = new TextEncoder().encode(`${allCids[0]?.toString()}|1048576|${id.peerId}|${Date.now()}`)
      const ts = await measure(
        [
          {
            fn: async () => {
              for (let i = 0; i < shardCount; i++) signEd25519(id.ed25519, receipt)
            },
          },
          {
            fn: async () => {
              for (let i = 0; i < shardCount; i++) await id.ed25519.sign(receipt)
            },
          },
        ],
        diskOpts,
      )
      row(
        `holder: receipt signatures (Ed25519, signEd25519), 14 per segment, ${fileLabel}`,
        ts[0] as Timing,
        'libp2p Ed25519PrivateKey.sign (a key object per call)',
        ts[1],
        `${((ts[0] as Timing).wallMs / shardCount).toFixed(2)} ms per shard, one at a time`,
      )

      // holder 3 (get): shard store read, streamed in 64 KiB chunks as the shard server sends it.
      const tr = await measure(
        [
          {
            fn: async () => {
              let n = 0
              for (const cid of allCids) for await (const c of store?.read(cid) ?? []) n += c.byteLength
              if (n !== shardCount * SHARD_BYTES) throw new Error(`read ${n} bytes`)
            },
          },
          ...(dd === undefined
            ? []
            : [
                {
                  fn: () => {
                    const r = runTimed(dd, [`if=${ddFile}`, 'of=/dev/null', 'bs=1M'])
                    if (r.status !== 0) throw new Error(`dd failed: ${r.stderr.trim()}`)
                  },
                },
              ]),
        ],
        diskOpts,
      )
      row(
        `holder: shard store read (ShardStore.read, 64 KiB chunks), ${fileLabel}`,
        tr[0] as Timing,
        dd === undefined ? peerNotInstalled('coreutils') : 'dd if=FILE of=/dev/null bs=1M (one file)',
        tr[1],
        `${store?.directIo === true ? 'ours with direct I/O (from the disk), dd from the page cache' : 'both from the page cache'} (shard LRU cache off); 14 shards per 10 MiB of file (a get reads 10)`,
      )
    } finally {
      await store?.close()
    }
  })

  // get 1: BLAKE3 check of the 10 shards a segment is decoded from (6 data + 4 parity).
  {
    const t = await measure(
      [
        {
          fn: () => {
            for (const [s, shards] of stripes.entries()) {
              const segmentCids = cids[s] as CID[]
              for (let j = LOST_DATA; j < K + M; j++) {
                const want = (segmentCids[j] as CID).multihash.digest
                if (!sameBytes(blake3(shards[j] as Uint8Array), want)) throw new Error('shard digest differs')
              }
            }
          },
        },
        {
          fn: () => {
            for (const shards of stripes) {
              for (let j = LOST_DATA; j < K + M; j++)
                createHash('sha256')
                  .update(shards[j] as Uint8Array)
                  .digest()
            }
          },
        },
      ],
      opts,
    )
    row(
      `get: BLAKE3 check of 10 shards per segment, ${fileLabel}`,
      t[0] as Timing,
      'sha256 (node:crypto) of the same shards',
      t[1],
      'then the whole-file BLAKE3 again (see the put row)',
    )
  }

  // get 2: decode with the first 4 data shards lost (reconstructData, as FileService.get does).
  {
    const damaged = stripes.map((s) => s.slice() as (Uint8Array | null)[])
    const t = await measure(
      [
        {
          setup: () => {
            for (const d of damaged) d.fill(null, 0, LOST_DATA)
          },
          fn: () => {
            for (const d of damaged) rs.reconstructData(d)
          },
        },
      ],
      opts,
    )
    for (const [s, d] of damaged.entries()) {
      for (let j = 0; j < LOST_DATA; j++) {
        if (!sameBytes(d[j] as Uint8Array, stripes[s]?.[j] as Uint8Array)) throw new Error('decode differs')
      }
    }
    row(
      `get: RS(10,4) decode, 4 data shards lost, kernel=${rs.kernel}, ${fileLabel}`,
      t[0] as Timing,
      '-',
      undefined,
      'rebuilds only the lost data shards; peer rebuilds all, so see the rs-reconstruct rows',
    )
  }

  return rows
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await run({ quick: process.argv.includes('--quick') })
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
}
