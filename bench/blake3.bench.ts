/**
 * BLAKE3 throughput: our `blake3` and `Blake3Stream` (src/crypto, the native @napi-rs/blake-hash
 * binding) against b3sum (the BLAKE3 team's Rust tool) on the same temp file, plus SHA-256 (node:crypto)
 * against coreutils sha256sum as a reference.
 *
 *   node bench/blake3.bench.ts [--quick]
 *
 * The file (256 MiB; quick: 64 MiB of random bytes) is read with read(2) into one 1 MiB buffer, as
 * `b3sum --no-mmap` does, so both sides pay the same page-cache copies on one core. `b3sum` with its
 * defaults (mmap, one thread per core) is the multi-core ceiling. MB/s is 10^6 file bytes per second,
 * the median of several runs after a warm-up that also fills the page cache; runs alternate between
 * contenders. Peer times are whole process lifetimes (about 1 ms of start-up). Digests are checked
 * against the peer's before any number is reported.
 */
import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Blake3Stream, blake3 } from '../src/crypto/index.ts'
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
  writeRandomFile,
} from './lib.ts'

export const description =
  'Hash throughput on one core, reading a temp file in 1 MiB chunks (page cache). Ratio = ours / peer.'

const CHUNK_BYTES = MiB

/** Read `path` in 1 MiB chunks into one reused buffer, passing each chunk to `onChunk`. */
function readChunks(path: string, buf: Uint8Array, onChunk: (chunk: Uint8Array) => void): void {
  const fd = openSync(path, 'r')
  try {
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, buf.byteLength, pos)
      if (n === 0) break
      pos += n
      onChunk(n === buf.byteLength ? buf : buf.subarray(0, n))
    }
  } finally {
    closeSync(fd)
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/** First word of a `b3sum` / `sha256sum` output line. */
const firstWord = (s: string): string => s.trim().split(/\s+/)[0] ?? ''

/** Runs the benchmark and returns its rows. Throws when a digest differs from the peer's. */
export async function run(options: BenchOptions): Promise<Row[]> {
  const fileBytes = (options.quick ? 64 : 256) * MiB
  const opts = options.quick ? { runs: 5, warmup: 1 } : { runs: 7, warmup: 1 }
  const sizeLabel = `${fileBytes / MiB} MiB file`
  const b3sum = which('b3sum')
  const sha256sum = which('sha256sum')
  const b3sumVersion = b3sum === undefined ? '' : runTimed(b3sum, ['--version']).stdout.trim()

  return await withTempDir('blake3', async (dir) => {
    const file = join(dir, 'input.bin')
    writeRandomFile(file, fileBytes)
    const buf = new Uint8Array(CHUNK_BYTES)
    let streamDigest = ''
    let sha256Digest = ''
    const peerOut = new Map<string, string>()
    const peerRun = (label: string, cmd: string, args: string[]) => () => {
      const r = runTimed(cmd, [...args, file])
      if (r.status !== 0) throw new Error(`${label} failed (${r.status}): ${r.stderr.trim()}`)
      peerOut.set(label, firstWord(r.stdout))
    }

    const contenders = [
      {
        fn: () => {
          const h = new Blake3Stream()
          readChunks(file, buf, (c) => h.update(c))
          streamDigest = hex(h.digest())
        },
      },
      { fn: () => readChunks(file, buf, (c) => void blake3(c)) },
      {
        fn: () => {
          const h = createHash('sha256')
          readChunks(file, buf, (c) => h.update(c))
          sha256Digest = h.digest('hex')
        },
      },
      ...(b3sum === undefined
        ? []
        : [
            { fn: peerRun('b3sum-1', b3sum, ['--no-mmap', '--num-threads', '1']) },
            { fn: peerRun('b3sum', b3sum, []) },
          ]),
      ...(sha256sum === undefined ? [] : [{ fn: peerRun('sha256sum', sha256sum, []) }]),
    ]
    const t = await measure(contenders, opts)
    const [stream, oneShot, sha256] = t as [Timing, Timing, Timing]
    const b3single = b3sum === undefined ? undefined : t[3]
    const b3multi = b3sum === undefined ? undefined : t[4]
    const shaPeer = sha256sum === undefined ? undefined : t[b3sum === undefined ? 3 : 5]

    for (const label of ['b3sum-1', 'b3sum']) {
      const d = peerOut.get(label)
      if (d !== undefined && d !== streamDigest)
        throw new Error(`${label} digest ${d} != ours ${streamDigest}`)
    }
    const shaOut = peerOut.get('sha256sum')
    if (shaOut !== undefined && shaOut !== sha256Digest) throw new Error('sha256sum digest differs from ours')

    const peerMBps = (x: Timing | undefined): number | null =>
      x === undefined ? null : mbps(fileBytes, x.wallMs)
    const b3Name =
      b3sum === undefined ? peerNotInstalled('b3sum') : `${b3sumVersion} --no-mmap --num-threads 1`
    const row = (
      name: string,
      ours: Timing,
      peer: string,
      peerTiming: Timing | undefined,
      note: string,
    ): Row => {
      const o = mbps(fileBytes, ours.wallMs)
      const p = peerMBps(peerTiming)
      return {
        name,
        ours_MBps: o,
        peer,
        peer_MBps: p,
        ratio: ratioOf(o, p),
        ours_cpuSecPerGB: cpuSecPerGB(fileBytes, ours.cpuMs),
        note,
      }
    }
    return [
      row(
        `blake3 Blake3Stream, ${sizeLabel}, 1 MiB reads`,
        stream,
        b3Name,
        b3single,
        'whole-file digest (as FileService.put); both one core, read(2) into a 1 MiB buffer',
      ),
      row(
        `blake3 blake3() per 1 MiB chunk, ${sizeLabel}`,
        oneShot,
        b3Name,
        b3single,
        'one digest per chunk (as shard CIDs); peer hashes the whole file',
      ),
      row(
        `blake3 Blake3Stream vs b3sum default, ${sizeLabel}`,
        stream,
        b3sum === undefined ? peerNotInstalled('b3sum') : `${b3sumVersion} (mmap, all cores)`,
        b3multi,
        'ours on one core against the peer on every core: the ceiling, not a like-for-like ratio',
      ),
      row(
        `sha256 node:crypto (reference), ${sizeLabel}, 1 MiB reads`,
        sha256,
        sha256sum === undefined ? peerNotInstalled('coreutils') : 'sha256sum (GNU coreutils)',
        shaPeer,
        'reference: SHA-256 is the hash of default IPFS CIDs',
      ),
    ]
  })
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await run({ quick: process.argv.includes('--quick') })
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
}
