/**
 * Post-quantum sealed messages: X-Wing handshakes (encapsulate + decapsulate), HPKE seal + open of a
 * 256-byte message, and whole sealed direct messages (sign, seal, open, verify), ours against the
 * libraries and against X25519 alone, all in the same run.
 *
 *   node bench/sealed.bench.ts [--quick]
 *
 * Contenders (each checked to round-trip, and the libraries to interoperate with ours, before timing):
 * - ours: src/crypto/xwing.ts + hpke.ts, node:crypto (OpenSSL 3.5) ML-KEM-768, X25519, SHA3, HMAC, AES-GCM;
 * - X25519 alone: DHKEM(X25519, HKDF-SHA256) of RFC 9180 §4.1 on the same node:crypto primitives and
 *   our HPKE key schedule (what a classical-only node would pay; checked against `@hpke/core`);
 * - `@hpke/core` 1.9 with `@hpke/hybridkem-x-wing` 0.7 (pure-JS ML-KEM from `mlkem`), and with its
 *   WebCrypto DHKEM(X25519);
 * - `hpke` 1.1 (panva; WebCrypto, which in Node 24 has ML-KEM-768 and X25519) with MLKEM768-X25519
 *   (X-Wing, 0x647a) and DHKEM(X25519).
 * One operation at a time (each awaited); rounds alternate the contenders so background load hits all
 * alike; the figure is the median round. CPU µs per operation counts every thread of the process
 * (WebCrypto runs on libuv's pool). No timing is asserted.
 *
 * Rows: `{ name, peer, ratio, note, ours_opsPerSec, peer_opsPerSec, ours_cpuUsPerOp, peer_cpuUsPerOp }`;
 * no MB/s (a handshake has no size), ratio = ours ops/s ÷ peer ops/s (above 1: ours faster). The
 * issue's goal is X-Wing within 1.6× of X25519 alone: the "X25519 alone" rows' ratio ≥ 1 / 1.6 = 0.63.
 */
import { createHmac, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core'
import { XWing } from '@hpke/hybridkem-x-wing'
import * as Panva from 'hpke'
import { systemRandom } from '../src/common/random.ts'
import { hpkeOpen, hpkeSeal, openWithSharedSecret, sealWithSharedSecret } from '../src/crypto/hpke.ts'
import { signHybrid, verifyHybrid } from '../src/crypto/hybrid.ts'
import { createKeyRecord } from '../src/crypto/key-record.ts'
import { generateIdentity } from '../src/crypto/keys.ts'
import { ReplayWindow } from '../src/crypto/replay-window.ts'
import { openMessage, sealMessage } from '../src/crypto/sealed-message.ts'
import { generateXWingKeyPair, xwingDecapsulate, xwingEncapsulate } from '../src/crypto/xwing.ts'
import { type BenchOptions, cpuMs, median, sig } from './lib.ts'

export const description =
  'Post-quantum sealed direct messages: X-Wing (ML-KEM-768 + X25519) handshakes and HPKE (RFC 9180) ' +
  'seal + open of 256-byte messages, ours (node:crypto) against X25519 alone and against the HPKE ' +
  'libraries (`@hpke/core` + `@hpke/hybridkem-x-wing`, panva `hpke` on WebCrypto); and whole sealed ' +
  'messages (hybrid Ed25519 + ML-DSA-65 signature inside, seal, open, verify, replay window). No MB/s: ' +
  'the note gives ops/s and CPU µs per op; ratio = ours ops/s ÷ peer ops/s. Goal: X-Wing within 1.6× of ' +
  'X25519 alone (ratio ≥ 0.63 on those rows).'

export interface SealedRow {
  name: string
  peer: string
  peer_MBps: null
  ratio: number | null
  note: string
  ours_opsPerSec: number
  peer_opsPerSec: number | null
  ours_cpuUsPerOp: number
  peer_cpuUsPerOp: number | null
}

type Op = () => unknown

interface Contender {
  name: string
  op: Op
}

interface Rate {
  opsPerSec: number
  cpuUsPerOp: number
}

/** ops/s and CPU µs per op of each contender: median of `rounds` rounds of `perRound` ops each. */
async function rates(contenders: readonly Contender[], rounds: number, perRound: number): Promise<Rate[]> {
  for (const c of contenders) for (let i = 0; i < Math.min(20, perRound); i++) await c.op()
  const ops = contenders.map((): number[] => [])
  const cpu = contenders.map((): number[] => [])
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of contenders.entries()) {
      const c0 = cpuMs()
      const t0 = performance.now()
      for (let k = 0; k < perRound; k++) await c.op()
      const wall = performance.now() - t0
      ops[i]?.push(perRound / (wall / 1000))
      cpu[i]?.push(((cpuMs() - c0) * 1000) / perRound)
    }
  }
  return contenders.map((_, i) => ({
    opsPerSec: sig(median(ops[i] ?? [])),
    cpuUsPerOp: sig(median(cpu[i] ?? [])),
  }))
}

function row(name: string, ours: Rate, peer: string, theirs: Rate | null, extra = ''): SealedRow {
  const ratio = theirs === null ? null : Math.round((ours.opsPerSec / theirs.opsPerSec) * 100) / 100
  const them = theirs === null ? '' : `; peer ${theirs.opsPerSec} ops/s, ${theirs.cpuUsPerOp} µs CPU/op`
  return {
    name,
    peer,
    peer_MBps: null,
    ratio,
    note: `ours ${ours.opsPerSec} ops/s, ${ours.cpuUsPerOp} µs CPU/op${them}${extra}`,
    ours_opsPerSec: ours.opsPerSec,
    peer_opsPerSec: theirs?.opsPerSec ?? null,
    ours_cpuUsPerOp: ours.cpuUsPerOp,
    peer_cpuUsPerOp: theirs?.cpuUsPerOp ?? null,
  }
}

// DHKEM(X25519, HKDF-SHA256), RFC 9180 §4.1, on node:crypto: the classical-only baseline.
const DHKEM_X25519_ID = 0x0020
const KEM_SUITE = Uint8Array.of(0x4b, 0x45, 0x4d, 0x00, 0x20) // "KEM" ‖ I2OSP(0x0020, 2)
const V1 = new TextEncoder().encode('HPKE-v1')
const EAE_PRK = new TextEncoder().encode('eae_prk')
const SHARED_SECRET = new TextEncoder().encode('shared_secret')

function extractAndExpand(dh: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const prk = createHmac('sha256', new Uint8Array(0))
    .update(V1)
    .update(KEM_SUITE)
    .update(EAE_PRK)
    .update(dh)
    .digest()
  return createHmac('sha256', prk)
    .update(Uint8Array.of(0, 32))
    .update(V1)
    .update(KEM_SUITE)
    .update(SHARED_SECRET)
    .update(kemContext)
    .update(Uint8Array.of(1))
    .digest()
}

interface X25519Recipient {
  privateKey: KeyObject
  publicKey: Uint8Array
}

/** A recipient key imported once, as ours keeps a parsed X-Wing key per recipient. */
interface X25519Public {
  raw: Uint8Array
  key: KeyObject
}

function x25519Public(raw: Uint8Array): X25519Public {
  return {
    raw,
    key: createPublicKey({ key: Buffer.from(raw), format: 'raw-public', asymmetricKeyType: 'x25519' }),
  }
}

function dhkemEncap(pkR: X25519Public): { sharedSecret: Uint8Array; enc: Uint8Array } {
  const e = generateKeyPairSync('x25519')
  const enc = e.publicKey.export({ format: 'raw-public' })
  const dh = diffieHellman({ privateKey: e.privateKey, publicKey: pkR.key })
  return { sharedSecret: extractAndExpand(dh, Buffer.concat([enc, pkR.raw])), enc }
}

function dhkemDecap(enc: Uint8Array, r: X25519Recipient): Uint8Array {
  const pkE = createPublicKey({ key: Buffer.from(enc), format: 'raw-public', asymmetricKeyType: 'x25519' })
  const dh = diffieHellman({ privateKey: r.privateKey, publicKey: pkE })
  return extractAndExpand(dh, Buffer.concat([enc, r.publicKey]))
}

function eq(a: Uint8Array, b: Uint8Array, what: string): void {
  if (!Buffer.from(a).equals(Buffer.from(b))) throw new Error(`${what}: round trip failed`)
}

/** Runs the benchmark and returns its rows. Throws when a contender does not round-trip or interoperate. */
export async function run(options: BenchOptions): Promise<SealedRow[]> {
  const rounds = options.quick ? 3 : 9
  const per = options.quick ? 50 : 300
  const pt = new Uint8Array(256).map((_, i) => i)
  const info = new TextEncoder().encode('nodus bench info')

  // Recipients.
  const xw = generateXWingKeyPair()
  const x = generateKeyPairSync('x25519')
  const xr: X25519Recipient = {
    privateKey: x.privateKey,
    publicKey: x.publicKey.export({ format: 'raw-public' }),
  }
  const xrPub = x25519Public(xr.publicKey)
  const libXw = new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Aes256Gcm() })
  const libX = new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Aes256Gcm(),
  })
  const libXwKey = {
    pub: await libXw.kem.deserializePublicKey(xw.publicKey),
    priv: await libXw.kem.deserializePrivateKey(xw.seed),
  }
  const libXKp = await libX.kem.generateKeyPair()
  const panvaXw = new Panva.CipherSuite(
    Panva.KEM_MLKEM768_X25519,
    Panva.KDF_HKDF_SHA256,
    Panva.AEAD_AES_256_GCM,
  )
  const panvaX = new Panva.CipherSuite(
    Panva.KEM_DHKEM_X25519_HKDF_SHA256,
    Panva.KDF_HKDF_SHA256,
    Panva.AEAD_AES_256_GCM,
  )
  const panvaXwPriv = await panvaXw.DeserializePrivateKey(xw.seed)
  const panvaXwPub = await panvaXw.DeserializePublicKey(xw.publicKey)
  const panvaXKp = await panvaX.GenerateKeyPair()

  // Checks: round trips, and interoperability of ours with both libraries (same X-Wing key).
  {
    const a = xwingEncapsulate(xw.publicKey)
    eq(xwingDecapsulate(xw, a.ciphertext), a.sharedSecret, 'ours X-Wing')
    const d = dhkemEncap(xrPub)
    eq(dhkemDecap(d.enc, xr), d.sharedSecret, 'DHKEM(X25519)')
    const s = hpkeSeal(xw.publicKey, pt, { info })
    eq(hpkeOpen(xw, s.enc, s.ciphertext, { info }), pt, 'ours HPKE')
    const core = await libXw.seal({ recipientPublicKey: libXwKey.pub, info }, pt)
    eq(hpkeOpen(xw, new Uint8Array(core.enc), new Uint8Array(core.ct), { info }), pt, '@hpke/core → ours')
    eq(
      new Uint8Array(await libXw.open({ recipientKey: libXwKey.priv, enc: s.enc, info }, s.ciphertext)),
      pt,
      'ours → @hpke/core',
    )
    const pv = await panvaXw.Seal(panvaXwPub, pt, { info })
    eq(hpkeOpen(xw, pv.encapsulatedSecret, pv.ciphertext, { info }), pt, 'hpke (panva) → ours')
    eq(await panvaXw.Open(panvaXwPriv, s.enc, s.ciphertext, { info }), pt, 'ours → hpke (panva)')
    // The X25519 baseline is real RFC 9180: @hpke/core opens what it seals.
    const libXPub = new Uint8Array(await libX.kem.serializePublicKey(libXKp.publicKey))
    const bd = dhkemEncap(x25519Public(libXPub))
    const bct = sealWithSharedSecret(DHKEM_X25519_ID, bd.sharedSecret, pt, { info })
    eq(
      new Uint8Array(await libX.open({ recipientKey: libXKp, enc: bd.enc, info }, bct)),
      pt,
      'DHKEM baseline → @hpke/core',
    )
  }

  // 1. KEM handshakes: one encapsulation and one decapsulation.
  const kem = await rates(
    [
      {
        name: 'ours',
        op: () => xwingDecapsulate(xw, xwingEncapsulate(xw.publicKey).ciphertext),
      },
      { name: 'x25519', op: () => dhkemDecap(dhkemEncap(xrPub).enc, xr) },
      {
        name: 'lib-xwing',
        op: async () => {
          const e = await libXw.kem.encap({ recipientPublicKey: libXwKey.pub })
          await libXw.kem.decap({ recipientKey: libXwKey.priv, enc: e.enc })
        },
      },
      {
        name: 'lib-x25519',
        op: async () => {
          const e = await libX.kem.encap({ recipientPublicKey: libXKp.publicKey })
          await libX.kem.decap({ recipientKey: libXKp.privateKey, enc: e.enc })
        },
      },
    ],
    rounds,
    per,
  )

  // 2. HPKE seal + open of 256 bytes.
  const hpke = await rates(
    [
      {
        name: 'ours',
        op: () => {
          const s = hpkeSeal(xw.publicKey, pt, { info })
          hpkeOpen(xw, s.enc, s.ciphertext, { info })
        },
      },
      {
        name: 'x25519',
        op: () => {
          const d = dhkemEncap(xrPub)
          const ct = sealWithSharedSecret(DHKEM_X25519_ID, d.sharedSecret, pt, { info })
          openWithSharedSecret(DHKEM_X25519_ID, dhkemDecap(d.enc, xr), ct, { info })
        },
      },
      {
        name: 'lib-xwing',
        op: async () => {
          const s = await libXw.seal({ recipientPublicKey: libXwKey.pub, info }, pt)
          await libXw.open({ recipientKey: libXwKey.priv, enc: s.enc, info }, s.ct)
        },
      },
      {
        name: 'lib-x25519',
        op: async () => {
          const s = await libX.seal({ recipientPublicKey: libXKp.publicKey, info }, pt)
          await libX.open({ recipientKey: libXKp, enc: s.enc, info }, s.ct)
        },
      },
      {
        name: 'panva-xwing',
        op: async () => {
          const s = await panvaXw.Seal(panvaXwPub, pt, { info })
          await panvaXw.Open(panvaXwPriv, s.encapsulatedSecret, s.ciphertext, { info })
        },
      },
      {
        name: 'panva-x25519',
        op: async () => {
          const s = await panvaX.Seal(panvaXKp.publicKey, pt, { info })
          await panvaX.Open(panvaXKp.privateKey, s.encapsulatedSecret, s.ciphertext, { info })
        },
      },
    ],
    rounds,
    per,
  )

  // 3. Whole sealed messages, and their parts: the hybrid signature dominates.
  const [alice, bob] = await Promise.all([generateIdentity(), generateIdentity()])
  const bobKey = generateXWingKeyPair()
  const now = Date.now()
  const record = (
    await createKeyRecord(bob, bobKey, { epoch: 1, notBefore: now - 60_000, notAfter: now + 86_400_000 })
  ).value
  const bobKeys = { peerId: bob.peerId.toString(), keys: [{ epoch: 1, keyPair: bobKey }] }
  const clock = { now: () => Date.now() }
  const replay = new ReplayWindow({ maxIds: 1_000_000 })
  const msg = new Uint8Array(256).fill(7)
  const signed = await signHybrid(alice, msg)
  const alicePub = { ed25519: alice.ed25519.publicKey.raw, mldsa65: alice.mldsa.publicKey }
  const sealedOne = await sealMessage(alice, record, msg, { clock, random: systemRandom })
  eq(openMessage(bobKeys, sealedOne.bytes, { clock }).body, msg, 'sealed message')
  const msgRounds = options.quick ? 3 : 5
  const msgPer = options.quick ? 20 : 100
  const messages = await rates(
    [
      {
        name: 'sealed',
        op: async () => {
          const s = await sealMessage(alice, record, msg, { clock, random: systemRandom })
          openMessage(bobKeys, s.bytes, { clock, replay })
        },
      },
      { name: 'sign', op: () => signHybrid(alice, msg) },
      {
        name: 'verify',
        op: () => {
          if (!verifyHybrid(alicePub, msg, signed)) throw new Error('hybrid verify failed')
        },
      },
    ],
    msgRounds,
    msgPer,
  )
  // Eight in flight: ML-DSA signing runs on libuv's thread pool.
  const inFlight = 8
  const t0 = performance.now()
  const c0 = cpuMs()
  const total = options.quick ? 80 : 400
  let next = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) {
        next++
        const s = await sealMessage(alice, record, msg, { clock, random: systemRandom })
        openMessage(bobKeys, s.bytes, { clock, replay })
      }
    }),
  )
  const concurrent: Rate = {
    opsPerSec: sig(total / ((performance.now() - t0) / 1000)),
    cpuUsPerOp: sig(((cpuMs() - c0) * 1000) / total),
  }

  const [kOurs, kX, kLib, kLibX] = kem as [Rate, Rate, Rate, Rate]
  const [hOurs, hX, hLib, hLibX, hPv, hPvX] = hpke as [Rate, Rate, Rate, Rate, Rate, Rate]
  const [mSealed, mSign, mVerify] = messages as [Rate, Rate, Rate]
  const sealedBytes = sealedOne.bytes.byteLength
  return [
    row(
      'X-Wing handshake (encaps + decaps) vs X25519 alone',
      kOurs,
      'DHKEM(X25519), node:crypto',
      kX,
      '; goal ratio ≥ 0.63 (within 1.6×)',
    ),
    row(
      'X-Wing handshake vs @hpke/hybridkem-x-wing',
      kOurs,
      '@hpke/hybridkem-x-wing 0.7 (mlkem, pure JS)',
      kLib,
    ),
    row(
      'X-Wing handshake vs @hpke/core DHKEM(X25519)',
      kOurs,
      '@hpke/core 1.9 DhkemX25519 (WebCrypto)',
      kLibX,
    ),
    row(
      'HPKE seal + open 256 B: X-Wing vs X25519 alone',
      hOurs,
      'DHKEM(X25519) + our key schedule, node:crypto',
      hX,
      '; goal ratio ≥ 0.63 (within 1.6×)',
    ),
    row(
      'HPKE seal + open 256 B vs @hpke/core + x-wing',
      hOurs,
      '@hpke/core 1.9 + @hpke/hybridkem-x-wing 0.7',
      hLib,
    ),
    row(
      'HPKE seal + open 256 B vs @hpke/core X25519',
      hOurs,
      '@hpke/core 1.9 DhkemX25519 (WebCrypto)',
      hLibX,
    ),
    row('HPKE seal + open 256 B vs hpke (panva) X-Wing', hOurs, 'hpke 1.1 MLKEM768-X25519 (WebCrypto)', hPv),
    row('HPKE seal + open 256 B vs hpke (panva) X25519', hOurs, 'hpke 1.1 DHKEM(X25519) (WebCrypto)', hPvX),
    row(
      'sealed message 256 B: seal + open, one at a time',
      mSealed,
      '-',
      null,
      `; ${sealedBytes} bytes sealed; of which hybrid sign ${mSign.opsPerSec}/s (${mSign.cpuUsPerOp} µs CPU), hybrid verify ${mVerify.opsPerSec}/s (${mVerify.cpuUsPerOp} µs CPU), HPKE seal + open ${hOurs.opsPerSec}/s`,
    ),
    row('sealed message 256 B: seal + open, 8 in flight', concurrent, '-', null, `; ${total} messages`),
  ]
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await run({ quick: process.argv.includes('--quick') })
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
}
