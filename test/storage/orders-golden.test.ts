/**
 * Golden bytes of the signed storage records (order, commit, pin, pin grant): fixed records signed
 * with fixed (seeded) Ed25519 keys must encode to exactly these bytes, and these bytes must decode and
 * verify back to the records. Nodes of earlier versions send and accept these bytes: a change here is
 * a wire-format change.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { CID } from 'multiformats/cid'
import { identityFromSeeds, signEd25519 } from '../../src/crypto/index.ts'
import { cidForBytes, DAG_CBOR_CODEC } from '../../src/storage/codec/cid.ts'
import {
  openCommit,
  openGrant,
  openOrder,
  openPin,
  type PinGrant,
  type PinRequest,
  type StorageCommit,
  type StorageOrder,
  signCommit,
  signGrant,
  signOrder,
  signPin,
} from '../../src/storage/protocol/orders.ts'

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const T0 = 1_750_000_000_000

const uploaderId = await identityFromSeeds(seed(1), seed(2))
const holderId = await identityFromSeeds(seed(3), seed(4))
const pinnerId = await identityFromSeeds(seed(5), seed(6))
const uploader = uploaderId.peerId.toString()
const holder = holderId.peerId.toString()
const pinner = pinnerId.peerId.toString()
const signAs = (id: typeof uploaderId) => (d: Uint8Array) => signEd25519(id.ed25519, d)
const cids = [0, 1, 2].map((i) => cidForBytes(new Uint8Array([i, 9, 9])))
const [cid0, cid1, cid2] = cids as [CID, CID, CID]
const manifest = cidForBytes(new Uint8Array([7, 7, 7]), DAG_CBOR_CODEC)

const order: StorageOrder = {
  uploader,
  holder,
  cids,
  maxBytes: 1_048_576,
  expiresAt: T0 + 86_400_000,
  issuedAt: T0,
}
const repairOrder: StorageOrder = { ...order, cids: [cid0], manifest }
const commit: StorageCommit = {
  uploader,
  holder,
  manifest,
  cids,
  expiresAt: T0 + 86_400_000,
  issuedAt: T0 + 1000,
}
const grant: PinGrant = { issuer: uploader, pinner, manifest, expiresAt: T0 + 7_200_000, issuedAt: T0 }
const pin: Omit<PinRequest, 'grant'> = {
  pinner,
  holder,
  cids: [cid1, cid2],
  expiresAt: T0 + 3_600_000,
  issuedAt: T0 + 2000,
  manifest,
  critical: true,
}
const plainPin: Omit<PinRequest, 'grant'> = {
  pinner,
  holder,
  cids: [cid0],
  expiresAt: T0 + 3_600_000,
  issuedAt: T0,
}

const GOLDEN = {
  order:
    'a2637369675840b05299826111d64fd5cd0b3ead1bf4d82172f607c228dbf7d174502db87b7f42d728aebe31edc7' +
    'e517d4b03d47df0953e4ce4a51074f098db4dfca33b05c3f0564626f6479a6646369647383582401551e20247bec' +
    'ef419a0f42ed9db18fe604cbd9bdde24c4772fb8773fbdd2101a6c9dd4582401551e2040dfd3dc9a1726a8d3cb1f' +
    '646d8a3f529fba721b1c9a0dd1f32c685a2b10db69582401551e20c386b615989954ca7b0aa89ce71d072979c470' +
    '77cbbf2d628a287c46dd1dfd5a66686f6c6465727834313244334b6f6f57526e645668565a504369517748424242' +
    '646737363947797250555731337a787771517966397233414e6162616869737375656441741b000001977420dc00' +
    '686d617842797465731a001000006875706c6f616465727834313244334b6f6f574b3939566f56784e4537587a79' +
    '427758457a573778684b37477076383572394633563366794b53554b504835696578706972657341741b00000197' +
    '79473800',
  repairOrder:
    'a2637369675840428e7f14a56c339d43996feab542b8c08eb79cd46df9e700b447a6aba710c306096b2af0d06170' +
    'd9cfb407f586017a766c856ae9d0f8e2b7046714b8ccabf20f64626f6479a7646369647381582401551e20247bec' +
    'ef419a0f42ed9db18fe604cbd9bdde24c4772fb8773fbdd2101a6c9dd466686f6c6465727834313244334b6f6f57' +
    '526e645668565a504369517748424242646737363947797250555731337a787771517966397233414e6162616869' +
    '737375656441741b000001977420dc00686d616e6966657374582401711e20a9212be7af3bfa10daaa68c06f350c' +
    '6be8cc81f0d79c05c267be0bbf1489a41e686d617842797465731a001000006875706c6f61646572783431324433' +
    '4b6f6f574b3939566f56784e4537587a79427758457a573778684b37477076383572394633563366794b53554b50' +
    '4835696578706972657341741b0000019779473800',
  commit:
    'a26373696758406639a469f5eb573acca3c5f3c5b9fa804f9de8b6757fed75dd1d6d6dfd6a776e89b2ed416a1d91' +
    '46cd746d37968613ff00fc246715deff0ae9dd0d78e7f4f60164626f6479a6646369647383582401551e20247bec' +
    'ef419a0f42ed9db18fe604cbd9bdde24c4772fb8773fbdd2101a6c9dd4582401551e2040dfd3dc9a1726a8d3cb1f' +
    '646d8a3f529fba721b1c9a0dd1f32c685a2b10db69582401551e20c386b615989954ca7b0aa89ce71d072979c470' +
    '77cbbf2d628a287c46dd1dfd5a66686f6c6465727834313244334b6f6f57526e645668565a504369517748424242' +
    '646737363947797250555731337a787771517966397233414e6162616869737375656441741b000001977420dfe8' +
    '686d616e6966657374582401711e20a9212be7af3bfa10daaa68c06f350c6be8cc81f0d79c05c267be0bbf1489a4' +
    '1e6875706c6f616465727834313244334b6f6f574b3939566f56784e4537587a79427758457a573778684b374770' +
    '76383572394633563366794b53554b504835696578706972657341741b0000019779473800',
  grant:
    'a263736967584060cae120f5dc7f03829807670eef6a24e98497464731f45314e34f695fd33e36309bd92329f298' +
    '09c5333274e747b0dc046bc3da79649d6d532904ffb9ddb00064626f6479a5666973737565727834313244334b6f' +
    '6f574b3939566f56784e4537587a79427758457a573778684b37477076383572394633563366794b53554b504835' +
    '6670696e6e65727834313244334b6f6f574846643167794e5946717874376b6539465932566f5656575932585350' +
    '68764c3976673270423677514766616869737375656441741b000001977420dc00686d616e696665737458240171' +
    '1e20a9212be7af3bfa10daaa68c06f350c6be8cc81f0d79c05c267be0bbf1489a41e696578706972657341741b00' +
    '000197748eb900',
  pin:
    'a26373696758406d4ef2bd10abb0c83107d66418cf29a3bce03009d32f79bd8a01dfa9f4766387d792c1b1db508c' +
    '0e5d9521b14423635bb143e4f52bb5dd0333927f1e860cfa0964626f6479a8646369647382582401551e2040dfd3' +
    'dc9a1726a8d3cb1f646d8a3f529fba721b1c9a0dd1f32c685a2b10db69582401551e20c386b615989954ca7b0aa8' +
    '9ce71d072979c47077cbbf2d628a287c46dd1dfd5a656772616e7459011ba263736967584060cae120f5dc7f0382' +
    '9807670eef6a24e98497464731f45314e34f695fd33e36309bd92329f29809c5333274e747b0dc046bc3da79649d' +
    '6d532904ffb9ddb00064626f6479a5666973737565727834313244334b6f6f574b3939566f56784e4537587a7942' +
    '7758457a573778684b37477076383572394633563366794b53554b5048356670696e6e65727834313244334b6f6f' +
    '574846643167794e5946717874376b6539465932566f565657593258535068764c39766732704236775147666168' +
    '69737375656441741b000001977420dc00686d616e6966657374582401711e20a9212be7af3bfa10daaa68c06f35' +
    '0c6be8cc81f0d79c05c267be0bbf1489a41e696578706972657341741b00000197748eb90066686f6c6465727834' +
    '313244334b6f6f57526e645668565a504369517748424242646737363947797250555731337a7877715179663972' +
    '33414e6162616670696e6e65727834313244334b6f6f574846643167794e5946717874376b6539465932566f5656' +
    '57593258535068764c39766732704236775147666168637269746963616cf56869737375656441741b0000019774' +
    '20e3d0686d616e6966657374582401711e20a9212be7af3bfa10daaa68c06f350c6be8cc81f0d79c05c267be0bbf' +
    '1489a41e696578706972657341741b000001977457ca80',
  plainPin:
    'a263736967584089d71d4341d6fe14d4d188e0e3b9c0d970cdc7f2cff8823e863130104557d25dd4f622db68d518' +
    '32ceb76129457f33428de54174b647c5ea2d1b6c2794448c0f64626f6479a5646369647381582401551e20247bec' +
    'ef419a0f42ed9db18fe604cbd9bdde24c4772fb8773fbdd2101a6c9dd466686f6c6465727834313244334b6f6f57' +
    '526e645668565a504369517748424242646737363947797250555731337a787771517966397233414e6162616670' +
    '696e6e65727834313244334b6f6f574846643167794e5946717874376b6539465932566f56565759325853506876' +
    '4c3976673270423677514766616869737375656441741b000001977420dc00696578706972657341741b00000197' +
    '7457ca80',
}

const now = T0 + 5000

describe('golden bytes: storage orders, commits, pins and grants', () => {
  it('encode fixed records with fixed keys to the pinned bytes', async () => {
    const grantBytes = await signGrant(grant, signAs(uploaderId))
    const got = {
      order: hex(await signOrder(order, signAs(uploaderId))),
      repairOrder: hex(await signOrder(repairOrder, signAs(uploaderId))),
      commit: hex(await signCommit(commit, signAs(uploaderId))),
      grant: hex(grantBytes),
      pin: hex(await signPin(pin, signAs(pinnerId), grantBytes)),
      plainPin: hex(await signPin(plainPin, signAs(pinnerId))),
    }
    assert.deepEqual(got, GOLDEN)
  })

  it('decode and verify the pinned bytes back to the records', () => {
    assert.deepEqual(openOrder(unhex(GOLDEN.order), uploader, holder, now), order)
    assert.deepEqual(openOrder(unhex(GOLDEN.repairOrder), uploader, holder, now), repairOrder)
    assert.deepEqual(openCommit(unhex(GOLDEN.commit), uploader, holder, now), commit)
    assert.deepEqual(openGrant(unhex(GOLDEN.grant), now), grant)
    assert.deepEqual(openPin(unhex(GOLDEN.pin), pinner, holder, now), { ...pin, grant })
    assert.deepEqual(openPin(unhex(GOLDEN.plainPin), pinner, holder, now), plainPin)
  })
})
