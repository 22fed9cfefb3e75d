import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { isNodusError } from '../../src/common/errors.ts'
import {
  decodeVertex,
  genesisVertices,
  openVertex,
  VERTEX_DOMAIN,
  type Vertex,
  verifiedVertex,
} from '../../src/consensus/index.ts'
import { signEd25519, signingBytes } from '../../src/crypto/index.ts'
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
