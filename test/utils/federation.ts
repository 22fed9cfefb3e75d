/**
 * A devnet federation for end-to-end tests: `nodes` node processes on loopback, the first `members`
 * of them validators of a `nodus genesis devnet` genesis (the others follow it).
 */
import { join } from 'node:path'
import { Devnet } from '../../src/cli/devnet.ts'
import { cliJson } from './run-cli.ts'

export function startFederation(o: {
  dir: string
  nodes: number
  members?: number
  roundTimeoutMs?: number
}): Promise<Devnet> {
  const genesisFile = join(o.dir, 'genesis.json')
  return Devnet.start({
    nodes: o.nodes,
    baseDir: join(o.dir, 'net'),
    basePort: 0,
    logLevel: 'warn',
    genesis: async (dirs) => {
      await cliJson([
        'genesis',
        'devnet',
        ...dirs.slice(0, o.members ?? o.nodes).flatMap((d) => ['--member', d]),
        '--out',
        genesisFile,
        '--round-timeout-ms',
        String(o.roundTimeoutMs ?? 300),
      ])
      return genesisFile
    },
  })
}
