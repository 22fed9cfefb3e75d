import { join } from 'node:path'
import { initNode } from '../../src/cli/init.ts'
import type { Clock } from '../../src/common/clock.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { loadConfig } from '../../src/config/config.ts'
import { createNode, type NodusNode } from '../../src/node/node.ts'
import type { RepairEvent } from '../../src/storage/keeper/repair.ts'

/**
 * Start `n` real nodes in this process (loopback, data under `dir`), each with `config`, and connect
 * every pair. Repair events of all nodes go to `onRepairEvent`. With `clock` (a FakeClock, say) every
 * node reads it instead of the system clock.
 */
export async function startNodes(
  dir: string,
  n: number,
  config: Record<string, unknown>,
  onRepairEvent?: (e: RepairEvent) => void,
  clock?: Clock,
): Promise<NodusNode[]> {
  const nodes: NodusNode[] = []
  for (let i = 0; i < n; i++) {
    const d = join(dir, `n${i}`)
    await initNode(d, config)
    const node = await createNode(await loadConfig(d), {
      logger: silentLogger(),
      ...(onRepairEvent === undefined ? {} : { onRepairEvent }),
      ...(clock === undefined ? {} : { clock }),
    })
    await node.start()
    nodes.push(node)
  }
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) await nodes[i]?.libp2p.dial(nodes[j]?.libp2p.getMultiaddrs() ?? [])
  }
  return nodes
}
