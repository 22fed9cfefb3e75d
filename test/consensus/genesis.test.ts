import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { seededRandom } from '../../src/common/random.ts'
import {
  GENESIS_DEFAULTS,
  genesisFromJson,
  genesisSigningBytes,
  genesisToJson,
  leaderPermutation,
  newGenesisBody,
  verifyGenesis,
} from '../../src/consensus/index.ts'
import { signEd25519 } from '../../src/crypto/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { federation } from './harness.ts'

test('a genesis signed by every member round-trips through its JSON file', async () => {
  const { genesis, committee } = await federation(7)
  const text = genesisToJson(genesis)
  const back = genesisFromJson(text)
  assert.deepEqual(back.id, genesis.id)
  assert.deepEqual(back.body.ledger, { accounts: [] })
  assert.equal(committee.n, 7)
  assert.equal(committee.f, 2)
  assert.equal(committee.quorum, 5)
  assert.equal(committee.validity, 3)
  // Every validator leads once per n rounds.
  assert.deepEqual(Array.from({ length: 7 }, (_, i) => committee.leader(i + 1)).sort(), [0, 1, 2, 3, 4, 5, 6])
})

test('a changed parameter, a missing or a foreign signature is refused with GENESIS_INVALID', async () => {
  const { genesis } = await federation(4)
  const other = await federation(4, 50)
  const json = JSON.parse(genesisToJson(genesis))
  const refuse = (doc: unknown, reason: RegExp) =>
    assert.throws(
      () => genesisFromJson(JSON.stringify(doc)),
      (e) => isNodusError(e, 'GENESIS_INVALID') && reason.test(e.message),
    )
  refuse({ ...json, genesis: { ...json.genesis, roundTimeoutMs: 1000 } }, /members\[0\] does not verify/)
  refuse({ ...json, signatures: json.signatures.slice(1) }, /one signature per member/)
  const foreign = JSON.parse(genesisToJson(other.genesis)).signatures[2]
  refuse({ ...json, signatures: json.signatures.with(2, foreign) }, /members\[2\] does not verify/)
  refuse(
    { ...json, genesis: { ...json.genesis, members: [...json.genesis.members, json.genesis.members[0]] } },
    /listed twice/,
  )
  refuse({ ...json, genesis: { ...json.genesis, signatureMode: 'hybrid' } }, /mldsa65 is required/)
  refuse({ ...json, genesis: { ...json.genesis, leaderSeed: 'abc' } }, /hex/)
  assert.throws(
    () => genesisFromJson('{'),
    (e) => isNodusError(e, 'GENESIS_INVALID'),
  )
})

test('the leader permutation depends on the seed and the epoch, and is a permutation', () => {
  const a = leaderPermutation(10, new Uint8Array(32).fill(1), 0)
  assert.deepEqual(
    [...a].sort((x, y) => x - y),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  )
  assert.notDeepEqual(a, leaderPermutation(10, new Uint8Array(32).fill(2), 0))
  assert.notDeepEqual(a, leaderPermutation(10, new Uint8Array(32).fill(1), 1))
  assert.deepEqual(a, leaderPermutation(10, new Uint8Array(32).fill(1), 0))
})

test('newGenesisBody fills the defaults, the clock and a seed, and members sign it', async () => {
  const { keys } = await federation(4)
  const body = newGenesisBody(
    { federation: 'f', members: keys.map((k) => ({ ed25519: k.publicKey.raw })), ledger: { tokens: [] } },
    { clock: new FakeClock(1234), random: seededRandom(1) },
  )
  assert.equal(body.createdAtMs, 1234)
  assert.equal(body.roundTimeoutMs, GENESIS_DEFAULTS.roundTimeoutMs)
  assert.equal(body.leaderSeed.byteLength, 32)
  const message = genesisSigningBytes(body)
  const g = verifyGenesis(
    body,
    keys.map((k) => signEd25519(k, message)),
  )
  assert.equal(genesisFromJson(genesisToJson(g)).body.federation, 'f')
  assert.throws(
    () =>
      newGenesisBody({ federation: 'f', members: [] }, { clock: new FakeClock(), random: seededRandom(1) }),
    (e) => isNodusError(e, 'GENESIS_INVALID'),
  )
})
