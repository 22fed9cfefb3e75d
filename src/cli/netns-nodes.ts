/**
 * Asking the nodes of a namespace devnet (devnet-netns.ts) what they see, from inside their namespaces:
 * their connections, their reachability, the relayed address of a node, and the CLI run beside a node.
 * Shared by test/e2e/nat.test.ts and `nodus demo --scenario reach` (demo-reach.ts).
 */
import { fileURLToPath } from 'node:url'
import { NodusError } from '../common/errors.ts'
import { type NetnsDevnet, netnsApi } from './devnet-netns.ts'

/** `bin/nodus.js` of this package, whether this module runs from src/, dist/ or the bundle. */
const BIN = fileURLToPath(
  new URL(
    import.meta.url.includes('/dist/') ? '../../../bin/nodus.js' : '../../bin/nodus.js',
    import.meta.url,
  ),
)

/** One connection as `GET /network/peers` lists it. */
export interface PeerRow {
  peerId: string
  addr: string
  relayed: boolean
  transport?: string
  /** `inbound` or `outbound`: who dialed. */
  direction?: string
}

/** Node `index`'s connections (`GET /network/peers`). @throws NodusError NETNS_COMMAND_FAILED (the node is down) */
export async function peersOf(net: NetnsDevnet, index: number): Promise<PeerRow[]> {
  const r = await netnsApi(net, index, 'GET', '/network/peers')
  const body = r.body as { peers?: PeerRow[] } | PeerRow[] | undefined
  return Array.isArray(body) ? body : (body?.peers ?? [])
}

/** Node `index`'s reachability (`GET /network/reachability`): `public`, `relayed` or `private`. */
export async function nodeReachability(net: NetnsDevnet, index: number): Promise<string> {
  const r = await netnsApi(net, index, 'GET', '/network/reachability')
  return String((r.body as { reachability?: string } | undefined)?.reachability)
}

/** The addresses node `index` announces (`GET /network/reachability`). */
export async function announcedAddrs(net: NetnsDevnet, index: number): Promise<string[]> {
  const r = await netnsApi(net, index, 'GET', '/network/reachability')
  return ((r.body as { addresses?: { addr: string }[] } | undefined)?.addresses ?? []).map((a) => a.addr)
}

/** The relayed address of node `to` through node `relay` (default node 0, the devnet's relay). */
export function circuitOf(net: NetnsDevnet, to: number, relay = 0): string {
  const r = net.devnet.nodes[relay]
  const target = net.devnet.nodes[to]
  if (r === undefined || target === undefined)
    throw new NodusError('INVALID_ARGUMENT', `no node ${r === undefined ? relay : to}`)
  return `${r.multiaddrs[0]}/p2p-circuit/p2p/${target.peerId}`
}

/** Is node `a` connected to node `b` directly, at the address `b`'s NAT router (or host) shows? */
export async function directlyConnected(net: NetnsDevnet, a: number, b: number): Promise<boolean> {
  const peer = net.devnet.nodes[b]?.peerId
  const seenAs = net.hosts[b]?.seenAs
  return (await peersOf(net, a)).some(
    (p) => p.peerId === peer && !p.relayed && p.addr.startsWith(`/ip4/${seenAs}/tcp/`),
  )
}

/**
 * Runs the CLI (`bin/nodus.js ARGS --data-dir DIR --json`) inside node `index`'s namespace, as a user
 * beside that node would (a child process, no time limit but `options.timeoutMs`, default 600 000 ms,
 * and `options.signal`); resolves with the last JSON line it printed.
 * @throws NodusError NETNS_COMMAND_FAILED when it exits non-zero (the last line of its output in the
 *   message), TIMEOUT, ABORTED
 */
export async function netnsCli(
  net: NetnsDevnet,
  index: number,
  args: string[],
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Record<string, unknown>> {
  const node = net.devnet.nodes[index]
  const host = net.hosts[index]
  if (node === undefined || host === undefined) throw new NodusError('INVALID_ARGUMENT', `no node ${index}`)
  options.signal?.throwIfAborted()
  const timeoutMs = options.timeoutMs ?? 600_000
  const child = net.topology.spawn(
    host.netns,
    [process.execPath, BIN, ...args, '--data-dir', node.dataDir, '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000)
  })
  let why: NodusError | undefined
  const stop = (err: NodusError): void => {
    why ??= err
    child.kill('SIGKILL')
  }
  const timer = setTimeout(
    () => stop(new NodusError('TIMEOUT', `nodus ${args[0]} in ${host.netns} took over ${timeoutMs} ms`)),
    timeoutMs,
  )
  const onAbort = (): void => stop(new NodusError('ABORTED', `nodus ${args[0]} in ${host.netns}: aborted`))
  options.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (c) => resolve(c))
    })
    if (why !== undefined) throw why
    const lines = stdout.trim().split('\n')
    if (code !== 0) {
      const last = [...stderr.trim().split('\n'), ...lines].filter((l) => l !== '').pop() ?? ''
      throw new NodusError(
        'NETNS_COMMAND_FAILED',
        `nodus ${args.join(' ')} in ${host.netns} exited ${code}: ${last}`,
      )
    }
    return JSON.parse(lines.pop() ?? '{}') as Record<string, unknown>
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
  }
}
