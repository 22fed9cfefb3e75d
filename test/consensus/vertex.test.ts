import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { isNodusError } from '../../src/common/errors.ts'
import {
  committeeOf,
  decodeVertex,
  genesisSigningBytes,
  genesisVertices,
  openVertex,
  signVertex,
  VERTEX_DOMAIN,
  type Vertex,
  type VertexSigner,
  verifiedVertex,
  verifyGenesis,
} from '../../src/consensus/index.ts'
import {
  hybridPublicKey,
  identityFromSeeds,
  type NodeIdentity,
  signEd25519,
  signHybrid,
  signingBytes,
} from '../../src/crypto/index.ts'
import { federation, vertexOf } from './harness.ts'

const fed = await federation(4)
const g = genesisVertices(fed.committee)
const round1 = await Promise.all(
  [0, 1, 2, 3].map((a) => vertexOf(fed, a, 1, [g[a] as Vertex, ...g.filter((x) => x.author !== a)])),
)

/** A body like a valid round-2 vertex of author 0, with `patch` applied, signed by author `signer`. */
function signed(patch: Record<string, unknown>, signer = 0): Uint8Array {
  const body: Record<string, unknown> = {
    v: 1,
    epoch: 0,
    round: 2,
    author: 0,
    parents: round1.map((p) => [p.author, p.round, p.digest]),
    txs: [Uint8Array.of(1, 2, 3)],
    ts: 5000,
    ...patch,
  }
  const sig = signEd25519(fed.keys[signer] as Ed25519PrivateKey, signingBytes(VERTEX_DOMAIN, body))
  return dagCbor.encode({ body, sig })
}

function refuses(bytes: Uint8Array, code: string, reason: RegExp | undefined, peerAction: string): void {
  assert.throws(
    () => openVertex(bytes, fed.committee, fed.limits),
    (err) =>
      isNodusError(err) &&
      err.code === code &&
      err.peerAction === peerAction &&
      (reason === undefined || reason.test(err.message)),
  )
}

test('a signed vertex decodes to what was signed; its digest is BLAKE3 of its bytes', () => {
  const bytes = signed({})
  const v = openVertex(bytes, fed.committee, fed.limits)
  assert.equal(v.round, 2)
  assert.equal(v.parents.length, 4)
  assert.deepEqual(v.txs, [Uint8Array.of(1, 2, 3)])
  assert.equal(v.digest.byteLength, 32)
  assert.deepEqual(
    openVertex(round1[2]?.bytes as Uint8Array, fed.committee, fed.limits).digest,
    round1[2]?.digest,
  )
})

test('decode refusals carry typed codes and peer actions', () => {
  const [p0, p1, p2, p3] = round1 as [Vertex, Vertex, Vertex, Vertex]
  const ref = (v: Vertex) => [v.author, v.round, v.digest]
  refuses(Uint8Array.of(1, 2, 3), 'VERTEX_INVALID', /not dag-cbor|envelope/, 'reject')
  refuses(signed({ epoch: 1 }), 'VERTEX_WRONG_EPOCH', undefined, 'ignore')
  refuses(signed({ author: 9 }), 'VERTEX_INVALID', /author/, 'reject')
  refuses(signed({ round: 0 }), 'VERTEX_INVALID', /round/, 'reject')
  refuses(signed({ parents: [ref(p0), ref(p1)] }), 'VERTEX_INVALID', /fewer than the quorum/, 'reject')
  refuses(signed({ parents: [ref(p1), ref(p0), ref(p2)] }), 'VERTEX_INVALID', /own previous/, 'reject')
  refuses(
    signed({ parents: [ref(p0), ref(p1), ref(p1), ref(p2)] }),
    'VERTEX_INVALID',
    /two parents/,
    'reject',
  )
  refuses(
    signed({ round: 1, parents: [ref(p0), ref(p1), ref(p2), ref(p3)] }),
    'VERTEX_INVALID',
    /earlier round/,
    'reject',
  )
  refuses(signed({ extra: 1 }), 'VERTEX_INVALID', /keys/, 'reject')
  refuses(signed({ txs: [new Uint8Array(0)] }), 'VERTEX_INVALID', /txs\[0\]/, 'reject')
  refuses(
    signed({ txs: Array.from({ length: fed.limits.maxTxsPerVertex + 1 }, () => Uint8Array.of(1)) }),
    'VERTEX_TOO_LARGE',
    undefined,
    'reject',
  )
  refuses(
    signed({ txs: [new Uint8Array(fed.limits.maxVertexBytes)] }),
    'VERTEX_TOO_LARGE',
    undefined,
    'reject',
  )
  const badGenesis = [0, 0, new Uint8Array(32)]
  refuses(
    signed({ round: 1, parents: [badGenesis, ref(g[1] as Vertex), ref(g[2] as Vertex)] }),
    'VERTEX_INVALID',
    /genesis vertex/,
    'reject',
  )
  // Signed by another validator than its author: decodes, fails verification.
  refuses(signed({}, 1), 'SIGNATURE_INVALID', undefined, 'ban')
  // Not canonical: the same envelope with a non-minimal integer for the timestamp.
  const ok = signed({ ts: 23 })
  const i = Buffer.from(ok).indexOf(Buffer.from([0x62, 0x74, 0x73, 0x17]))
  assert.ok(i > 0)
  const loose = new Uint8Array([...ok.subarray(0, i + 3), 0x18, 0x17, ...ok.subarray(i + 4)])
  refuses(loose, 'VERTEX_INVALID', /canonical|dag-cbor/, 'reject')
})

test('signature verification is separable: decode, then verify elsewhere', () => {
  const d = decodeVertex(signed({}), fed.committee, fed.limits)
  assert.equal(d.check.scheme, 'ed25519')
  assert.throws(
    () => verifiedVertex(d, false),
    (e) => isNodusError(e, 'SIGNATURE_INVALID'),
  )
  assert.equal(verifiedVertex(d, true).round, 2)
})

test('hybrid mode: vertices carry Ed25519 + ML-DSA-65 signatures, and an Ed25519-only one is refused', async () => {
  const ids = await Promise.all(
    [0, 1, 2, 3].map((i) =>
      identityFromSeeds(new Uint8Array(32).fill(i + 1), new Uint8Array(32).fill(i + 101)),
    ),
  )
  const hybrid = await federation(4, 1, {
    signatureMode: 'hybrid',
    members: ids.map((id) => {
      const k = hybridPublicKey(id)
      return { ed25519: k.ed25519, mldsa65: k.mldsa65 }
    }),
  }).catch((e: unknown) => e)
  // federation() signs the genesis with Ed25519 only: a hybrid genesis needs hybrid signatures.
  assert.ok(isNodusError(hybrid, 'GENESIS_INVALID'))
  const body = {
    ...fed.genesis.body,
    signatureMode: 'hybrid' as const,
    members: ids.map((id) => ({ ...hybridPublicKey(id) })),
  }
  const message = genesisSigningBytes(body)
  const genesis = verifyGenesis(body, await Promise.all(ids.map((id) => signHybrid(id, message))))
  const committee = committeeOf(genesis)
  const gv = genesisVertices(committee)
  const input = {
    epoch: 0,
    round: 1,
    author: 1,
    parents: [gv[1] as Vertex, gv[0] as Vertex, gv[2] as Vertex],
    txs: [],
    timestampMs: 1,
  }
  const v = await signVertex(
    input,
    { scheme: 'hybrid', sign: (m) => signHybrid(ids[1] as NodeIdentity, m) },
    committee,
    genesis.body,
  )
  const opened = openVertex(v.bytes, committee, genesis.body)
  assert.equal(opened.author, 1)
  assert.ok(v.bytes.byteLength > 3309)
  const edOnly = await signVertex(input, fed.signers[1] as VertexSigner, fed.committee, fed.limits)
  assert.throws(
    () => openVertex(edOnly.bytes, committee, genesis.body),
    (e) => isNodusError(e, 'VERTEX_INVALID'),
  )
})
