/**
 * A federation's genesis across machines (`nodus genesis init|sign|verify`): each member's data dir
 * signs the same file in turn; the result is what a node's consensus and ledger areas accept.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { initGenesis, signGenesisFile, verifyGenesisFile } from '../../src/cli/genesis.ts'
import { publicKeysOf } from '../../src/cli/genesis-input.ts'
import { isNodusError } from '../../src/common/errors.ts'
import { seededRandom } from '../../src/common/random.ts'
import { committeeOf, loadGenesisFile } from '../../src/consensus/index.ts'
import { generateIdentity, type NodeIdentity, saveIdentity } from '../../src/crypto/index.ts'
import { genesisEntries, ledgerGenesisOf } from '../../src/ledger/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { runCli } from '../utils/run-cli.ts'

let dir = ''
let n = 0
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-genesis-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

const deps = () => ({ clock: new FakeClock(1_750_000_000_000), random: seededRandom(21) })

/** A member's machine: a data dir with keys, and the `nodus id --json` file it hands over. */
async function machine(): Promise<{ dataDir: string; idFile: string; id: NodeIdentity }> {
  const dataDir = join(dir, `m${n++}`)
  const id = await generateIdentity()
  await saveIdentity(dataDir, id)
  const idFile = `${dataDir}.json`
  await writeFile(idFile, JSON.stringify(publicKeysOf(id)))
  return { dataDir, idFile, id }
}

const draftPath = (): string => join(dir, `genesis-${n++}.json`)

test('three members sign in turn on their own machines; consensus and ledger accept the result', async () => {
  const [a, b, c] = [await machine(), await machine(), await machine()]
  const k = publicKeysOf(b.id)
  const out = draftPath()
  const made = await initGenesis(
    {
      federation: 'three-hosts',
      out,
      // Each way a member may hand over its key: its id file, a did:key, a PeerId.
      members: [`alice=${a.idFile}`, k.did, c.id.peerId.toString()],
      roundTimeoutMs: 300,
      maxTxsPerVertex: 100,
      accounts: [`${k.peerId}=5000,regen=7`, `${a.id.peerId.toString()}=20000000`],
      manaAuthority: k.ed25519,
    },
    deps(),
  )
  assert.deepEqual([made.members, made.accounts], [3, 2])
  const start = await verifyGenesisFile(out)
  assert.deepEqual(
    start.members.map((m) => [m.name, m.peerId, m.signature]),
    [
      ['alice', a.id.peerId.toString(), 'unsigned'],
      [undefined, k.peerId, 'unsigned'],
      [undefined, c.id.peerId.toString(), 'unsigned'],
    ],
  )
  assert.equal(start.complete, false)

  // A node refuses the draft until every member has signed.
  for (const [i, m] of [b, c, a].entries()) {
    await assert.rejects(loadGenesisFile(out), (e) => isNodusError(e, 'GENESIS_INCOMPLETE'))
    const r = await signGenesisFile(out, m.dataDir)
    assert.equal(r.signed, i + 1)
    assert.equal(r.complete, i === 2)
    assert.equal(r.id, made.id, 'signatures never change the genesis id')
  }
  const end = await verifyGenesisFile(out)
  assert.equal(end.complete, true)
  assert.equal(end.signed, 3)

  const genesis = await loadGenesisFile(out)
  assert.equal(Buffer.from(genesis.id).toString('hex'), made.id)
  const committee = committeeOf(genesis)
  assert.deepEqual([committee.n, committee.quorum, genesis.body.signatureMode], [3, 3, 'ed25519'])
  assert.deepEqual(
    [genesis.body.roundTimeoutMs, genesis.body.maxTxsPerVertex, genesis.body.createdAtMs],
    [300, 100, 1_750_000_000_000],
  )
  assert.equal(genesis.body.members[0]?.mldsa65, undefined, 'ed25519 mode leaves the ML-DSA keys out')
  const ledger = ledgerGenesisOf(genesis)
  assert.deepEqual(ledger.manaAuthority, b.id.ed25519.publicKey.raw)
  assert.deepEqual(
    ledger.accounts.map((x) => [x.balance, x.capacity, x.regenPerSecond]),
    [
      [5000, 10_000_000, 7],
      [20_000_000, 20_000_000, 1000],
    ],
  )
  assert.ok(genesisEntries(ledger).length > 2)

  // `verify` and `start` as a user runs them.
  const v = await runCli(['genesis', 'verify', out, '--json'], 60_000)
  assert.equal(v.code, 0, v.stderr)
  assert.equal((JSON.parse(v.stdout) as { complete: boolean }).complete, true)
})

test('a body changed after a signature is detected, and no member signs on top of it', async () => {
  const [a, b] = [await machine(), await machine()]
  const out = draftPath()
  await initGenesis({ federation: 'tamper', out, members: [a.idFile, b.idFile] }, deps())
  await signGenesisFile(out, a.dataDir)
  const signed = await readFile(out, 'utf8')
  const doc = JSON.parse(signed)
  doc.genesis.maxVertexBytes = 2 * 1024 * 1024
  await writeFile(out, JSON.stringify(doc))
  const r = await verifyGenesisFile(out)
  assert.deepEqual(
    r.members.map((m) => m.signature),
    ['invalid', 'unsigned'],
  )
  await assert.rejects(
    signGenesisFile(out, b.dataDir),
    (e) => isNodusError(e, 'GENESIS_INVALID') && /members 0 .*changed after they signed/.test(e.message),
  )
  assert.equal(JSON.parse(await readFile(out, 'utf8')).signatures[1], null, 'nothing written')

  // A complete file whose signature was altered does not load either.
  await writeFile(out, signed)
  await signGenesisFile(out, b.dataDir)
  await loadGenesisFile(out)
  const done = JSON.parse(await readFile(out, 'utf8'))
  done.signatures[0] = `${done.signatures[0].slice(0, -2)}${done.signatures[0].endsWith('00') ? '01' : '00'}`
  await writeFile(out, JSON.stringify(done))
  await assert.rejects(loadGenesisFile(out), (e) => isNodusError(e, 'GENESIS_INVALID'))
  assert.equal((await verifyGenesisFile(out)).members[0]?.signature, 'invalid')
})

test('a non-member cannot sign, and the file is left as it was', async () => {
  const [a, outsider] = [await machine(), await machine()]
  const out = draftPath()
  await initGenesis({ federation: 'members-only', out, members: [a.idFile] }, deps())
  const before = await readFile(out, 'utf8')
  await assert.rejects(signGenesisFile(out, outsider.dataDir), (e) => isNodusError(e, 'GENESIS_NOT_MEMBER'))
  assert.equal(await readFile(out, 'utf8'), before)
  const cli = await runCli(['genesis', 'sign', out, '--data-dir', outsider.dataDir], 60_000)
  assert.equal(cli.code, 1)
  assert.match(cli.stderr, /GENESIS_NOT_MEMBER/)
})

test('hybrid mode: members hand over both keys and sign with both', async () => {
  const ms = [await machine(), await machine(), await machine(), await machine()]
  const out = draftPath()
  // A member named by its Ed25519 key alone cannot be in a hybrid genesis.
  await assert.rejects(
    initGenesis(
      {
        federation: 'pq',
        out,
        members: [ms[0]?.idFile ?? '', ms[1]?.id.peerId.toString() ?? ''],
        hybrid: true,
      },
      deps(),
    ),
    (e) => isNodusError(e, 'INVALID_ARGUMENT') && /ML-DSA-65/.test(e.message),
  )
  await initGenesis({ federation: 'pq', out, members: ms.map((m) => m.idFile), hybrid: true }, deps())
  for (const m of ms) await signGenesisFile(out, m.dataDir)
  const genesis = await loadGenesisFile(out)
  const committee = committeeOf(genesis)
  assert.deepEqual([committee.n, committee.f, genesis.body.signatureMode], [4, 1, 'hybrid'])
  assert.deepEqual(genesis.body.members[2]?.mldsa65, ms[2]?.id.mldsa.publicKey)
  assert.ok(genesis.signatures.every((s) => !(s instanceof Uint8Array) && s.mldsa65.byteLength === 3309))
})

test('nodus start refuses a genesis some members have not signed', async () => {
  const [a, b] = [await machine(), await machine()]
  const out = draftPath()
  const init = await runCli(
    ['genesis', 'init', '--federation', 'cli', '--out', out, '--member', a.idFile, '--member', b.idFile],
    60_000,
  )
  assert.equal(init.code, 0, init.stderr)
  const again = await runCli(
    ['genesis', 'init', '--federation', 'cli', '--out', out, '--member', a.idFile],
    60_000,
  )
  assert.equal(again.code, 2, 'an existing draft is never overwritten')
  assert.match(again.stderr, /exists/)
  assert.equal((await runCli(['genesis', 'sign', out, '--data-dir', a.dataDir], 60_000)).code, 0)
  const v = await runCli(['genesis', 'verify', out], 60_000)
  assert.equal(v.code, 1)
  assert.match(v.stdout, /incomplete: 1 of 2 signed; waiting for #1/)
  const start = await runCli(['start', '--data-dir', a.dataDir, '--api-port', '0', '--genesis', out], 60_000)
  assert.equal(start.code, 1)
  assert.match(start.stderr, /GENESIS_INCOMPLETE.*members 1\b/)
})
