import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { test } from 'node:test'
import {
  digestKey,
  genesisFromJson,
  genesisToJson,
  genesisVertices,
  openVertex,
  type Vertex,
} from '../../src/consensus/index.ts'
import { federation, vertexOf } from './harness.ts'

// Fixtures of the file and wire formats (STYLE.md: formats later versions must still read): a genesis
// file, and a round-1 and a round-2 vertex, all from fixed keys. `NODUS_UPDATE_FIXTURES=1` rewrites
// them (only for a new format version, which has a new signing domain).
const GENESIS = new URL('./fixtures/genesis-v1.json', import.meta.url)
const VERTICES = new URL('./fixtures/vertices-v1.json', import.meta.url)

test('the v1 genesis file and vertices still decode, and encode to the same bytes', async () => {
  const fed = await federation(4, 31)
  const own = (a: number, round: readonly Vertex[]) => [
    round[a] as Vertex,
    ...round.filter((v) => v.author !== a),
  ]
  const r1 = await Promise.all(
    [0, 1, 2, 3].map((a) => vertexOf(fed, a, 1, own(a, genesisVertices(fed.committee)))),
  )
  const r2 = await vertexOf(fed, 2, 2, own(2, r1).slice(0, 3), [Uint8Array.of(1, 2, 3), Uint8Array.of(4)])
  const now = [r1[0] as Vertex, r2].map((v) => ({
    hex: Buffer.from(v.bytes).toString('hex'),
    digest: digestKey(v.digest),
  }))
  if (process.env.NODUS_UPDATE_FIXTURES === '1') {
    writeFileSync(GENESIS, genesisToJson(fed.genesis))
    writeFileSync(VERTICES, `${JSON.stringify(now, null, 2)}\n`)
  }
  const text = readFileSync(GENESIS, 'utf8')
  const genesis = genesisFromJson(text)
  assert.equal(digestKey(genesis.id), digestKey(fed.genesis.id))
  assert.equal(genesisToJson(fed.genesis), text, 'the genesis file is written as v1')
  const fixtures = JSON.parse(readFileSync(VERTICES, 'utf8')) as typeof now
  for (const [i, f] of fixtures.entries()) {
    const v = openVertex(new Uint8Array(Buffer.from(f.hex, 'hex')), fed.committee, genesis.body)
    assert.equal(digestKey(v.digest), f.digest)
    assert.equal(f.hex, now[i]?.hex, 'the encoder writes v1 bytes')
  }
})
