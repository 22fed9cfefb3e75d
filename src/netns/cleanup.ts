/**
 * Before a run: can this host build namespaces at all? After a crashed run: remove what it left
 * (namespaces named `nodus-…`, the processes in them).
 */
import { execFile } from 'node:child_process'
import type { AbortOptions } from '../common/abort.ts'
import { NodusError } from '../common/errors.ts'
import { delayBridgePath } from './bridge.ts'
import { type CommandRunner, withSbin } from './exec.ts'
import { NETNS_PREFIX } from './spec.ts'
import { stopProcessesIn } from './topology.ts'

/** The commands a topology runs. */
export const REQUIRED_TOOLS = ['ip', 'iptables', 'ethtool', 'sysctl'] as const

/** What a topology whose routers run a UPnP IGD needs beside {@link REQUIRED_TOOLS}. */
export const UPNP_TOOLS = ['miniupnpd', 'iptables-legacy'] as const

/**
 * Why namespaces cannot be built here, or undefined when they can (Linux, root, tools, bridge built);
 * with `upnp`, also the UPnP IGD's tools ({@link UPNP_TOOLS}).
 */
export async function netnsUnavailableReason(options: { upnp?: boolean } = {}): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root (run with sudo)'
  const missing = await missingTools(REQUIRED_TOOLS)
  if (missing.length > 0)
    return `missing ${missing.join(', ')} (apt-get install -y iproute2 iptables ethtool procps)`
  if (delayBridgePath() === undefined)
    return 'build/delay-bridge is not built (node scripts/build-native.ts --strict)'
  if (options.upnp === true) {
    const upnp = await missingTools(UPNP_TOOLS)
    if (upnp.length > 0)
      return `missing ${upnp.join(', ')} for the UPnP routers (apt-get install -y miniupnpd-iptables iptables)`
  }
  return undefined
}

async function missingTools(tools: readonly string[]): Promise<string[]> {
  const missing: string[] = []
  for (const tool of tools) {
    const found = await new Promise<boolean>((resolve) => {
      execFile('sh', ['-c', `command -v ${tool}`], { env: withSbin(process.env) }, (err) =>
        resolve(err === null),
      )
    })
    if (!found) missing.push(tool)
  }
  return missing
}

/**
 * Throws when namespaces cannot be built here.
 * @throws NodusError NETNS_UNAVAILABLE with the reason
 */
export async function assertNetnsAvailable(options: { upnp?: boolean } = {}): Promise<void> {
  const why = await netnsUnavailableReason(options)
  if (why !== undefined) throw new NodusError('NETNS_UNAVAILABLE', why)
}

/** Names of the namespaces whose name starts with `prefix` (default every run's: `nodus-`). */
export async function listNetns(
  runner: CommandRunner,
  prefix = NETNS_PREFIX,
  options: AbortOptions = {},
): Promise<string[]> {
  const { stdout } = await runner.run(['ip', 'netns', 'list'], options)
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(prefix))
}

/**
 * Removes leftovers of runs: every namespace named with `prefix` (default `nodus-`, every run; a run's
 * own is `nodus-<runId>-`), after signalling the processes in it. Returns the namespaces removed.
 * @throws NodusError INVALID_ARGUMENT (prefix not starting with `nodus-`), NETNS_COMMAND_FAILED
 */
export async function cleanupNetns(
  runner: CommandRunner,
  prefix = NETNS_PREFIX,
  options: AbortOptions = {},
): Promise<string[]> {
  if (!prefix.startsWith(NETNS_PREFIX))
    throw new NodusError(
      'INVALID_ARGUMENT',
      `cleanup removes only namespaces named ${NETNS_PREFIX}…, not "${prefix}"`,
    )
  const removed: string[] = []
  for (const ns of await listNetns(runner, prefix, options)) {
    options.signal?.throwIfAborted()
    await stopProcessesIn(runner, ns)
    await runner.run(['ip', 'netns', 'del', ns], options)
    removed.push(ns)
  }
  return removed
}
