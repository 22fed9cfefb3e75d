/**
 * Shard audits (src/storage/keeper/audit.ts): what answering and checking a challenge costs, against what a
 * challenger that kept the shard would do instead, re-hash all of it with the native BLAKE3
 * (@napi-rs/blake-hash, src/crypto `blake3`), on the same bytes.
 *
 *   node bench/audit.bench.ts [--quick]
 *
 * Rows (1 MiB shard, chunk-aligned 1 KiB range: 1,024 data bytes and 10 CVs, 1,403 bytes on the wire):
 * - proof: the holder's `answerChallenge` + `encodeProof` (a pure-TypeScript BLAKE3 pass over the shard
 *   for the sibling CVs);
 * - verify: the challenger's `decodeProof` + `verifyAnswer` (2 chunk hashes' worth of compressions);
 * - tree hash: `blake3Tree` (pure TypeScript) over the whole shard, the engine under both;
 * - full run only: proof for a 16 MiB shard.
 * MB/s is 10^6 bytes of audited shard per second (shard size / time per audit), so ours and the peer's
 * are comparable; ratio = ours / peer (> 1: faster than re-hashing). The note gives the time per
 * operation; CPU s/GB is CPU seconds per 10^9 audited bytes. Medians of several runs (each a batch of operations) after a warm-up; contenders alternate.
 * The proof is checked to verify and the tree hash to equal the native digest before any number is
 * reported.
 */
import { fileURLToPath } from 'node:url'
import { blake3 } from '../src/crypto/index.ts'
import { blake3Tree } from '../src/storage/codec/blake3-tree.ts'
import { cidForBytes } from '../src/storage/codec/cid.ts'
import {
  type AuditChallenge,
  answerChallenge,
  challengeOffset,
  decodeProof,
  encodeProof,
  verifyAnswer,
} from '../src/storage/keeper/audit.ts'
import {
  type BenchOptions,
  cpuSecPerGB,
  fillPseudoRandom,
  MiB,
  mbps,
  measure,
  type Row,
  ratioOf,
  sig,
} from './lib.ts'

export const description =
  'Shard audits: the holder builds a BLAKE3 slice proof (pure TypeScript), the challenger checks it against ' +
  'the CID; compared with re-hashing the whole shard natively. MB/s = audited shard bytes per second.'

const PEER = 'native blake3 re-hash of the whole shard (@napi-rs/blake-hash)'

/** A challenge on `shard` for a chunk-aligned range of `length` bytes (searches nonces). */
function alignedChallenge(shard: Uint8Array, length: number): AuditChallenge {
  const cid = cidForBytes(shard)
  for (let i = 0; ; i++) {
    const nonce = blake3(new TextEncoder().encode(`bench nonce ${i}`))
    const offset = challengeOffset(cid, shard.byteLength, length, nonce)
    if (offset % 1024 === 0) return { cid, size: shard.byteLength, offset, length, nonce }
  }
}

/** Row for `batch` operations per run of ours vs `peerBatch` native re-hashes of `bytes` bytes. */
async function compare(
  name: string,
  bytes: number,
  [batch, peerBatch]: [number, number],
  ours: () => unknown,
  opts: { runs: number; warmup: number },
  extra: string,
): Promise<Row> {
  const peer = (): void => {
    for (let i = 0; i < peerBatch; i++) blake3(shardFor(bytes))
  }
  const [o, p] = await measure(
    [
      {
        fn: () => {
          for (let i = 0; i < batch; i++) ours()
        },
      },
      { fn: peer },
    ],
    opts,
  )
  if (o === undefined || p === undefined) throw new Error('measure returned too few timings')
  const oursMbps = mbps(bytes * batch, o.wallMs)
  const peerMbps = mbps(bytes * peerBatch, p.wallMs)
  const perOp = (ms: number): string => (ms < 1 ? `${sig(ms * 1000)} µs` : `${sig(ms)} ms`)
  return {
    name,
    ours_MBps: oursMbps,
    peer: PEER,
    peer_MBps: peerMbps,
    ratio: ratioOf(oursMbps, peerMbps),
    ours_cpuSecPerGB: cpuSecPerGB(bytes * batch, o.cpuMs),
    peer_cpuSecPerGB: cpuSecPerGB(bytes * peerBatch, p.cpuMs),
    note: `ours ${perOp(o.wallMs / batch)}/op, peer ${perOp(p.wallMs / peerBatch)}/op${extra}`,
  }
}

const shards = new Map<number, Uint8Array>()
function shardFor(bytes: number): Uint8Array {
  let s = shards.get(bytes)
  if (s === undefined) {
    s = new Uint8Array(bytes)
    fillPseudoRandom(s, bytes)
    shards.set(bytes, s)
  }
  return s
}

/**
 * Runs the benchmark and returns its rows (does not print). Throws when a proof does not verify or the
 * TypeScript tree hash differs from the native one.
 */
export async function run(options: BenchOptions): Promise<Row[]> {
  const opts = options.quick ? { runs: 7, warmup: 2 } : { runs: 21, warmup: 3 }
  const rows: Row[] = []
  const shard = shardFor(MiB)
  const challenge = alignedChallenge(shard, 1024)
  const wire = encodeProof(answerChallenge(shard, challenge))
  if (!verifyAnswer(challenge, decodeProof(wire))) throw new Error('honest proof did not verify')
  if (Buffer.compare(blake3Tree(shard), blake3(shard)) !== 0) throw new Error('tree hash differs from native')
  const size = `; proof ${wire.byteLength} B on the wire`

  rows.push(
    await compare(
      'audit proof, 1 MiB shard, 1 KiB range (holder: answerChallenge + encodeProof)',
      MiB,
      [options.quick ? 4 : 10, 20],
      () => encodeProof(answerChallenge(shard, challenge)),
      opts,
      size,
    ),
  )
  rows.push(
    await compare(
      'audit verify, 1 MiB shard, 1 KiB range (challenger: decodeProof + verifyAnswer)',
      MiB,
      [options.quick ? 200 : 1000, 20],
      () => verifyAnswer(challenge, decodeProof(wire)),
      opts,
      size,
    ),
  )
  rows.push(
    await compare(
      'BLAKE3 tree hash in TypeScript (blake3Tree), 1 MiB',
      MiB,
      [options.quick ? 4 : 10, 20],
      () => blake3Tree(shard),
      opts,
      '',
    ),
  )
  if (!options.quick) {
    const big = shardFor(16 * MiB)
    const bigChallenge = alignedChallenge(big, 1024)
    const bigWire = encodeProof(answerChallenge(big, bigChallenge))
    if (!verifyAnswer(bigChallenge, decodeProof(bigWire))) throw new Error('honest proof did not verify')
    rows.push(
      await compare(
        'audit proof, 16 MiB shard, 1 KiB range (holder)',
        16 * MiB,
        [1, 2],
        () => encodeProof(answerChallenge(big, bigChallenge)),
        opts,
        `; proof ${bigWire.byteLength} B on the wire`,
      ),
    )
    rows.push(
      await compare(
        'audit verify, 16 MiB shard, 1 KiB range (challenger)',
        16 * MiB,
        [1000, 2],
        () => verifyAnswer(bigChallenge, decodeProof(bigWire)),
        opts,
        `; proof ${bigWire.byteLength} B on the wire`,
      ),
    )
  }
  return rows
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const row of await run({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(row))
}
