/**
 * By hand: where a put's CPU goes across a devnet, per process, user and system apart.
 *
 *   node bench/put-cpu.ts [--file FILE] [--nodes N] [--after MS] [--get] [--repeat N] [--segment-size B] [--in-flight N]
 *
 * Starts a devnet of N node processes (default 16; compiled dist/ when fresh, as `nodus devnet` does),
 * waits until it has settled (Devnet.settle), puts FILE (default: the Node.js binary, as the demo)
 * through node 0 with the CLI's client (src/cli/client.ts, in this process), and prints the put's
 * wall time and MB/s, the CPU seconds of every node process and of this client during the put, and
 * the devnet's CPU-s per GB of file. With --after MS it then also reports the devnet's CPU over the
 * next MS milliseconds (provider announcements and other work the put leaves behind). With --get it
 * then gets the file back through the last node into a temp file, and reports the same for the get.
 * With --repeat N it first puts N−1 files of random bytes of the same size, each measured alike: the
 * later puts show the cost once every process has compiled the put's code (V8 warm-up is paid per
 * process, so on a short put it weighs more across 16 processes than across 3).
 * After each step it prints the peak RSS (VmHWM) of node 0 and of the last node so far.
 * --segment-size and --in-flight set every node's storage.segmentSize (bytes) and storage.segmentsInFlight.
 * NODUS_BENCH_WINDOWS=1 also prints each step's window in CLOCK_MONOTONIC µs, the clock of the
 * timestamps in `--cpu-prof` profiles (NODE_OPTIONS reaches the node processes too).
 * Not part of `npm run bench` (no peer implementation); figures in docs/benchmarks-history.md, "Session 4".
 */
import { readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { distIsFresh } from '../scripts/dist.ts'
import { getFile, putFile } from '../src/cli/client.ts'
import { DEFAULT_DEMO_FILE } from '../src/cli/demo.ts'
import { Devnet as SourceDevnet } from '../src/cli/devnet.ts'
import { tuneGc } from '../src/cli/gc-tuning.ts'
import { procCpuSplit, withTempDir, writeRandomFile } from './lib.ts'

// Node processes run the compiled build when it is current (as bin/nodus.js does), else the sources.
const { Devnet } = distIsFresh()
  ? ((await import(new URL('../dist/src/cli/devnet.js', import.meta.url).href)) as {
      Devnet: typeof SourceDevnet
    })
  : { Devnet: SourceDevnet }

// This process is the CLI's client here: the same V8 settings as `nodus put`/`nodus get`.
tuneGc()

const { values: flags } = parseArgs({
  options: {
    file: { type: 'string' },
    nodes: { type: 'string' },
    after: { type: 'string' },
    get: { type: 'boolean' },
    repeat: { type: 'string' },
    'segment-size': { type: 'string' },
    'in-flight': { type: 'string' },
  },
})
const file = flags.file ?? DEFAULT_DEMO_FILE
const nodes = Number(flags.nodes ?? 16)
const afterMs = Number(flags.after ?? 0)
const bytes = statSync(file).size
const repeat = Math.max(1, Number(flags.repeat ?? 1))

await withTempDir('nodus-put-cpu-', async (dir) => {
  const storage: Record<string, number> = {}
  if (flags['segment-size'] !== undefined) storage.segmentSize = Number(flags['segment-size'])
  if (flags['in-flight'] !== undefined) storage.segmentsInFlight = Number(flags['in-flight'])
  const devnet = await Devnet.start({
    nodes,
    baseDir: join(dir, 'net'),
    basePort: 0,
    logLevel: 'warn',
    ...(Object.keys(storage).length === 0 ? {} : { config: { storage } }),
  })
  try {
    await devnet.settle()
    const pids = devnet.nodes.map((n) => n.proc.pid as number)
    const snap = (): { user: number; system: number }[] =>
      pids.map((p) => procCpuSplit(p) ?? { user: 0, system: 0 })
    const first = devnet.nodes[0]
    const last = devnet.nodes.at(-1)
    if (first === undefined || last === undefined) throw new Error('no nodes')
    /** Run `op`, print its wall time and every process's CPU (user/system) meanwhile. */
    const measured = async <T>(what: string, op: () => Promise<T>): Promise<T> => {
      const before = snap()
      const client0 = process.cpuUsage()
      const t0 = performance.now()
      const mono0 = process.hrtime.bigint() / 1000n
      const result = await op()
      const seconds = (performance.now() - t0) / 1000
      // CLOCK_MONOTONIC µs, the clock of --cpu-prof's timestamps: to cut a profile to this window.
      if (process.env.NODUS_BENCH_WINDOWS === '1')
        console.log(`window ${what} ${mono0} ${process.hrtime.bigint() / 1000n}`)
      const client = process.cpuUsage(client0)
      const after = snap()
      let user = 0
      let system = 0
      const per = pids.map((_, i) => {
        const u = (after[i]?.user ?? 0) - (before[i]?.user ?? 0)
        const s = (after[i]?.system ?? 0) - (before[i]?.system ?? 0)
        user += u
        system += s
        return `${i}:${u.toFixed(2)}/${s.toFixed(2)}`
      })
      const clientS = (client.user + client.system) / 1e6
      console.log(
        `${what} ${(bytes / 1e6).toFixed(1)} MB, ${nodes} nodes: ${seconds.toFixed(2)} s, ` +
          `${(bytes / 1e6 / seconds).toFixed(1)} MB/s; nodes user ${user.toFixed(2)} + system ` +
          `${system.toFixed(2)} CPU-s, client ${clientS.toFixed(2)}: ` +
          `${((user + system + clientS) / (bytes / 1e9)).toFixed(1)} CPU-s per GB`,
      )
      console.log(`per node (user/system CPU-s): ${per.join(' ')}`)
      const hwm = (pid: number): string =>
        (readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)?.[1] ?? '?').replace(
          /\d+/,
          (kb) => (Number(kb) / 1024).toFixed(0),
        )
      console.log(
        `peak RSS so far (VmHWM MB): node 0 ${hwm(pids[0] as number)}, last node ${hwm(pids.at(-1) as number)}`,
      )
      return result
    }
    for (let i = 1; i < repeat; i++) {
      const random = join(dir, `random-${i}.bin`)
      await writeRandomFile(random, bytes)
      await measured(`put ${i} (random bytes) through node 0:`, () =>
        putFile({ url: first.api, token: first.token }, random),
      )
      rmSync(random)
    }
    const put = await measured('put through node 0:', () =>
      putFile({ url: first.api, token: first.token }, file),
    )
    if (afterMs > 0) {
      const a = snap()
      await new Promise((r) => setTimeout(r, afterMs))
      const b = snap()
      const total = b.reduce((t, x, i) => t + x.user + x.system - (a[i]?.user ?? 0) - (a[i]?.system ?? 0), 0)
      console.log(`devnet CPU in the ${afterMs} ms after the put: ${total.toFixed(2)} CPU-s`)
    }
    if (flags.get === true) {
      await measured(`get through node ${nodes - 1}:`, () =>
        getFile({ url: last.api, token: last.token }, put.cid, join(dir, 'got.bin')),
      )
    }
  } finally {
    await devnet.stop(5_000)
  }
})
