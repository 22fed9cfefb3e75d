/**
 * Network namespaces for tests and demos (issue 22, part 4): real hosts in `ip netns` namespaces, home
 * segments behind NAT routers (cone and symmetric), and WAN latency, jitter and loss from a userspace
 * delay bridge (native/delay-bridge.c) on every access link. Linux and root only. See README.md.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export {
  type BridgeCounters,
  type BridgeDirectionCounters,
  type BridgeHandle,
  type BridgeLauncher,
  bridgeArgs,
  delayBridgePath,
  ProcessBridgeLauncher,
} from './bridge.ts'
export {
  assertNetnsAvailable,
  cleanupNetns,
  listNetns,
  netnsUnavailableReason,
  REQUIRED_TOOLS,
  UPNP_TOOLS,
} from './cleanup.ts'
export {
  COMMAND_TIMEOUT_MS,
  type CommandOutput,
  type CommandRunner,
  ExecFileRunner,
  withSbin,
} from './exec.ts'
export { type RootState, rootState, rootStateLeft } from './root-state.ts'
export {
  DEFAULT_TOPOLOGY_SPEC,
  type HomePlan,
  type LinkParams,
  linkParams,
  type NatKind,
  NETNS_PREFIX,
  netnsName,
  PUBLIC_SUBNET,
  type PublicHostPlan,
  planTopology,
  type TopologyPlan,
  type TopologySpec,
  validateSpec,
} from './spec.ts'
export {
  IGD_HTTP_PORT,
  igdChainRules,
  NetnsTopology,
  type NetnsTopologyDeps,
  natRules,
  offloadsOffCommand,
  stopProcessesIn,
  type TeardownReport,
} from './topology.ts'

/**
 * Path of the probe script (probe.ts: TCP/UDP probes run inside namespaces with `node`), at the
 * package root's src/netns/ whether this module runs from src/, dist/ or the bundle.
 */
export function probeScriptPath(): string {
  for (const rel of ['../../src/netns/probe.ts', '../../../src/netns/probe.ts']) {
    const url = new URL(rel, import.meta.url)
    if (existsSync(url)) return fileURLToPath(url)
  }
  return fileURLToPath(new URL('./probe.ts', import.meta.url))
}
