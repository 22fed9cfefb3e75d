/**
 * End to end (issue 21): a federation whose genesis was made the multi-machine way. Each member hands
 * over `nodus id --json`, one of them runs `nodus genesis init`, every member runs `nodus genesis sign`
 * on the same file in turn; 4 validator processes start with it, commit, and apply a transfer between
 * accounts the genesis lists.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { getJson } from '../../src/cli/client.ts'
import { apiOf, until } from '../../src/cli/demo-devnet.ts'
import { Devnet } from '../../src/cli/devnet.ts'
import { runCli } from '../utils/run-cli.ts'

let dir = ''
let net: Devnet | undefined
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-genesis-e2e-'))
})
after(async () => {
  await net?.stop()
  await rm(dir, { recursive: true, force: true })
})

const cli = async (args: string[]): Promise<Record<string, unknown>> => {
  const r = await runCli([...args, '--json'], 60_000)
  assert.equal(r.code, 0, `nodus ${args.join(' ')}: ${r.stderr}${r.stdout}`)
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Record<string, unknown>
}

test('4 members build the genesis on their own machines; validators run it and apply a transfer', {
  timeout: 240_000,
}, async () => {
  const genesisFile = join(dir, 'genesis.json')
  net = await Devnet.start({
    nodes: 4,
    baseDir: join(dir, 'net'),
    basePort: 0,
    logLevel: 'warn',
    genesis: async (dirs) => {
      const ids = await Promise.all(
        dirs.map(async (d, i) => {
          const keys = await cli(['id', '--data-dir', d])
          const file = join(dir, `member-${i}.json`)
          await writeFile(file, JSON.stringify(keys))
          return { file, peerId: keys.peerId as string }
        }),
      )
      await cli([
        'genesis',
        'init',
        '--federation',
        'four-hosts',
        '--out',
        genesisFile,
        ...ids.flatMap((m, i) => ['--member', `host-${i}=${m.file}`]),
        '--account',
        `${ids[0]?.peerId}=50000`,
        '--account',
        `${ids[2]?.peerId}=0,capacity=5000,regen=0`,
        '--round-timeout-ms',
        '300',
      ])
      for (const d of dirs.toReversed()) await cli(['genesis', 'sign', genesisFile, '--data-dir', d])
      assert.equal((await cli(['genesis', 'verify', genesisFile])).complete, true)
      return genesisFile
    },
  })
  const nodes = net.nodes
  const status = (i: number) =>
    getJson<{ role: string; lastCommitIndex: number; federation: string }>(
      apiOf(nodes[i] as never),
      '/dag/status',
    )
  for (let i = 0; i < 4; i++) {
    const s = await status(i)
    assert.deepEqual([s.role, s.federation], ['validator', 'four-hosts'])
  }
  assert.ok(await until(async () => (await status(0)).lastCommitIndex >= 3, 60_000), 'commits start')
  const to = nodes[2]?.peerId as string
  const t = await cli(['tx', 'transfer', to, '1234', '--data-dir', nodes[0]?.dataDir as string])
  assert.equal(t.status, 'applied')
  const mana = async () =>
    (await cli(['balance', to, '--data-dir', nodes[3]?.dataDir as string])).mana as number
  assert.ok(await until(async () => (await mana()) === 1234, 30_000), 'the transfer reaches every node')
})
