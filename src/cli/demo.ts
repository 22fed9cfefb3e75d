/**
 * `nodus demo`: the main job end to end. Start a devnet of separate node processes, put a real file
 * through one node, SIGKILL nodes that hold shards, get the file back through another node and
 * compare SHA-256. Cleans up every process and temporary directory, whatever happens.
 */
import { createHash } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NodusError } from '../common/errors.ts'
import { parseConfig } from '../config/index.ts'
import { type ApiTarget, getFile, getJson, putFile } from './client.ts'
import { withDevnet } from './demo-devnet.ts'
import { Progress } from './progress.ts'

/** The default demo file: the Node.js runtime binary that `npm ci` installed (about 126 MB). */
export const DEFAULT_DEMO_FILE = fileURLToPath(
  // node_modules is at the package root: two levels up from src/cli, three from dist/src/cli.
  ['../../node_modules/node/bin/node', '../../../node_modules/node/bin/node']
    .map((rel) => new URL(rel, import.meta.url))
    .find((u) => existsSync(u)) ?? new URL('../../node_modules/node/bin/node', import.meta.url),
)

export interface DemoOptions {
  nodes: number
  file: string
  kill: number
  basePort: number
  logLevel: string
  /** Parent of the devnet's temporary directory. Default the OS temp dir. */
  baseDir?: string
  /** Keep the devnet directory (logs, data) instead of removing it. */
  keep: boolean
  /** Node config applied to every node (e.g. storage.segmentSize, for small test files). */
  config?: Record<string, unknown>
  progress: boolean
  log: (msg: string) => void
}

export interface DemoResult {
  ok: boolean
  file: string
  bytes: number
  sha256: string
  cid: string
  nodes: number
  killed: number
  putSeconds: number
  getSeconds: number
  putMBps: number
  getMBps: number
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer)
  return h.digest('hex')
}

/** Validate demo options before anything starts. Throws FILE_NOT_FOUND or INVALID_ARGUMENT. */
export async function checkDemoOptions(o: DemoOptions): Promise<{ size: number; k: number; m: number }> {
  const cfg = parseConfig({ ...(o.config ?? {}), dataDir: '/unused' })
  const { k, m } = cfg.storage
  let size: number
  try {
    const st = await stat(o.file)
    if (!st.isFile()) throw new Error('not a regular file')
    size = st.size
  } catch {
    throw new NodusError('FILE_NOT_FOUND', `no such file: ${o.file}`, { details: { file: o.file } })
  }
  if (!Number.isInteger(o.kill) || o.kill < 0)
    throw new NodusError('INVALID_ARGUMENT', '--kill must be a whole number ≥ 0')
  if (o.kill > m) {
    throw new NodusError(
      'INVALID_ARGUMENT',
      `--kill ${o.kill} would lose ${o.kill} shards of a segment, but only m = ${m} losses per segment are survivable`,
      { details: { kill: o.kill, m } },
    )
  }
  if (!Number.isInteger(o.nodes) || o.nodes < 2)
    throw new NodusError('INVALID_ARGUMENT', '--nodes must be at least 2')
  if (o.nodes - 1 < k + m && o.kill > 0) {
    throw new NodusError(
      'INVALID_ARGUMENT',
      `--nodes ${o.nodes} leaves ${o.nodes - 1} storage peers, fewer than k+m = ${k + m}: one kill could lose several shards of a segment`,
    )
  }
  if (o.kill > o.nodes - 2)
    throw new NodusError('INVALID_ARGUMENT', '--kill must leave the uploader and the downloader alive')
  return { size, k, m }
}

/** Run the demo. Resolves with the result (ok false when bytes differ); throws on setup errors. */
export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const file = resolve(o.file)
  const { size, k, m } = await checkDemoOptions({ ...o, file })
  o.log(`file ${file}: ${(size / 1e6).toFixed(1)} MB; RS(${k},${m}); ${o.nodes} nodes; will kill ${o.kill}`)
  const shaPromise = sha256File(file)
  shaPromise.catch(() => {})
  return await withDevnet(o, 'nodus-demo-', async (devnet, _signal, baseDir) => {
    const uploader = devnet.nodes[0]
    const downloader = devnet.nodes[o.nodes - 1]
    if (uploader === undefined || downloader === undefined)
      throw new NodusError('NOT_STARTED', 'devnet incomplete')
    const up: ApiTarget = { url: uploader.api, token: uploader.token }
    const down: ApiTarget = { url: downloader.api, token: downloader.token }
    // Wait (bounded) until the uploader is connected to enough peers to place k+m shards apart.
    const want = Math.min(o.nodes - 1, k + m)
    const deadline = Date.now() + 30_000
    for (;;) {
      const { peers } = await getJson<{ peers: { peerId: string }[] }>(up, '/network/peers')
      const distinct = new Set(peers.map((p) => p.peerId)).size
      if (distinct >= want) break
      if (Date.now() > deadline) {
        o.log(`uploader sees ${distinct} peers after 30 s; putting anyway`)
        break
      }
      await new Promise((r) => setTimeout(r, 250))
    }

    o.log(`putting the file through node 0 (${uploader.peerId})`)
    const putBar = new Progress('put', size, o.progress)
    const put = await putFile(up, file, { onBytes: (n) => putBar.update(n) })
    putBar.update(size)
    putBar.done()
    const putSeconds = putBar.seconds
    o.log(
      `stored as ${put.cid}: ${put.segments} segments × ${put.k + put.m} shards on ${put.holders.length} peers`,
    )

    const victims = devnet.nodes
      .filter(
        (n) => n.index !== uploader.index && n.index !== downloader.index && put.holders.includes(n.peerId),
      )
      .slice(0, o.kill)
    if (victims.length < o.kill)
      throw new NodusError('INVALID_ARGUMENT', `only ${victims.length} shard holders can be killed`)
    for (const v of victims) {
      await devnet.kill(v.index)
      o.log(`SIGKILLed node ${v.index} (${v.peerId}), a shard holder`)
    }

    const out = join(baseDir, 'download.bin')
    o.log(`getting the file through node ${downloader.index} (${downloader.peerId})`)
    const getBar = new Progress('get', size, o.progress)
    await getFile(down, put.cid, out, { onBytes: (n) => getBar.update(n) })
    getBar.done()
    const getSeconds = getBar.seconds
    const [want256, got256] = await Promise.all([shaPromise, sha256File(out)])
    const ok = want256 === got256
    o.log(
      ok ? 'SHA-256 matches: the file came back byte for byte' : `SHA-256 MISMATCH: ${got256} != ${want256}`,
    )
    return {
      ok,
      file,
      bytes: size,
      sha256: want256,
      cid: put.cid,
      nodes: o.nodes,
      killed: victims.length,
      putSeconds: round(putSeconds),
      getSeconds: round(getSeconds),
      putMBps: round(size / 1e6 / putSeconds),
      getMBps: round(size / 1e6 / getSeconds),
    }
  })
}

function round(x: number): number {
  return Math.round(x * 100) / 100
}
