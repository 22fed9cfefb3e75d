/**
 * The DAG vertex (Mysticeti-C, Babel et al., arXiv 2310.14821, §3: a validator's signed block of a
 * round, referencing a quorum of the previous round). Bytes: dag-cbor of the envelope `{ body, sig }`:
 * - `body`: `{ v: 1, epoch, round, author, parents: [[author, round, digest], …], txs: [bytes, …], ts }`
 *   (`ts`: the author's clock, Unix ms; `txs`: opaque transactions, each 1 byte or more);
 * - `sig`: over dag-cbor `{ domain: "nodus/consensus-vertex/v1", body }` (the signed-record convention,
 *   src/crypto/signed-record.ts): 64 bytes of Ed25519, or `{ ed25519, mldsa65 }` in a hybrid
 *   federation (src/crypto/hybrid.ts), by the author's key in the committee.
 * The vertex's digest is BLAKE3-256 of the envelope bytes, which must be canonical dag-cbor (decoded
 * and encoded again they give the same bytes), so one signed vertex has one digest.
 *
 * Rules checked on decode (without the DAG): bounds; the epoch; the author in the committee; round ≥ 1;
 * `parents[0]` is the author's own previous vertex (any earlier round) and no other parent is the
 * author's; at most one parent per author; every parent of an earlier round; parents from at least a
 * quorum (2f+1) of distinct authors of round − 1; a round-0 parent is that author's genesis vertex.
 * The DAG (dag.ts) checks what needs the parents: present, and `ts` ≥ every parent's.
 *
 * Round 0 holds one genesis vertex per validator: never signed or sent, its digest BLAKE3-256 of
 * dag-cbor `{ domain: "nodus/consensus-genesis-vertex/v1", epoch, author, seed }`.
 *
 * Two steps, so signatures can be checked in a pool (src/crypto/verify-pool.ts): {@link decodeVertex}
 * gives a vertex with its `check`; {@link verifyVertex} checks inline, {@link verifiedVertex} takes a
 * pool's answer.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { bytesEqual } from '../common/bytes.ts'
import { NodusError } from '../common/errors.ts'
import {
  blake3,
  ED25519_SIGNATURE_BYTES,
  type Fail,
  failWith,
  type HybridSignature,
  MLDSA65_SIGNATURE_BYTES,
  readInt,
  readList,
  readMap,
  type SignatureCheck,
  SignatureVerifier,
  signingBytes,
} from '../crypto/index.ts'
import type { Committee } from './committee.ts'

/** The signing domain of a vertex: signed, never sent. */
export const VERTEX_DOMAIN = 'nodus/consensus-vertex/v1'
/** The vertex format version, `body.v`. */
export const VERTEX_VERSION = 1
/** Bytes of a vertex digest (BLAKE3-256). */
export const DIGEST_BYTES = 32
/** Largest round number. */
export const MAX_ROUND = 2 ** 32 - 1

/** A reference to a vertex: its slot (author, round) and digest. */
export interface VertexRef {
  readonly author: number
  readonly round: number
  /** BLAKE3-256 of the vertex's bytes, 32 bytes. */
  readonly digest: Uint8Array
}

/** A vertex, decoded. Treat as immutable. */
export interface Vertex extends VertexRef {
  readonly epoch: number
  /** `parents[0]` is the author's own previous vertex. Empty for genesis vertices. */
  readonly parents: readonly VertexRef[]
  /** Opaque transactions, in the author's order. */
  readonly txs: readonly Uint8Array[]
  /** The author's clock when it proposed, Unix ms. */
  readonly timestampMs: number
  /** The signed envelope bytes (empty for genesis vertices). */
  readonly bytes: Uint8Array
}

/** A vertex decoded from untrusted bytes: checked but for its signature, which `check` carries. */
export interface DecodedVertex extends Vertex {
  readonly check: SignatureCheck
}

/** The bounds of a vertex (from the genesis). */
export interface VertexLimits {
  /** Largest envelope, bytes. */
  maxVertexBytes: number
  /** Most transactions. */
  maxTxsPerVertex: number
}

/** What a proposer puts in a vertex; the codec adds `v` and signs. */
export interface VertexInput {
  epoch: number
  round: number
  author: number
  parents: readonly VertexRef[]
  txs: readonly Uint8Array[]
  timestampMs: number
}

/** Makes a vertex's signature over its signing bytes. */
export type VertexSigner =
  | { scheme: 'ed25519'; sign(message: Uint8Array): Uint8Array | Promise<Uint8Array> }
  | { scheme: 'hybrid'; sign(message: Uint8Array): Promise<HybridSignature> }

/** A map key for a digest (hex). */
export function digestKey(digest: Uint8Array): string {
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('hex')
}

/** `author@round:digest-prefix`, for logs and messages. */
export function refString(ref: VertexRef): string {
  return `${ref.author}@${ref.round}:${digestKey(ref.digest).slice(0, 12)}`
}

/** A bare reference to `v` (no body). */
export function refOf(v: VertexRef): VertexRef {
  return { author: v.author, round: v.round, digest: v.digest }
}

const GENESIS_CACHE = new WeakMap<Committee, readonly Vertex[]>()

/** The round-0 genesis vertices of `committee`, one per validator in index order (module doc). */
export function genesisVertices(committee: Committee): readonly Vertex[] {
  let out = GENESIS_CACHE.get(committee)
  if (out === undefined) {
    out = Object.freeze(
      committee.validators.map((v) => {
        const id = {
          domain: 'nodus/consensus-genesis-vertex/v1',
          epoch: committee.epoch,
          author: v.index,
          seed: committee.leaderSeed,
        }
        return Object.freeze({
          epoch: committee.epoch,
          round: 0,
          author: v.index,
          digest: blake3(dagCbor.encode(id)),
          parents: [],
          txs: [],
          timestampMs: 0,
          bytes: new Uint8Array(0),
        })
      }),
    )
    GENESIS_CACHE.set(committee, out)
  }
  return out
}

const fail: Fail = failWith('VERTEX_INVALID', 'vertex')
const BODY_KEYS = ['v', 'epoch', 'round', 'author', 'parents', 'txs', 'ts']

function tooLarge(what: string, max: number, actual: number): NodusError {
  return new NodusError('VERTEX_TOO_LARGE', `vertex: ${what} is ${actual}, more than ${max}`, {
    peerAction: 'reject',
    details: { reason: what, max, actual },
  })
}

function bodyMap(v: VertexInput): Record<string, unknown> {
  return {
    v: VERTEX_VERSION,
    epoch: v.epoch,
    round: v.round,
    author: v.author,
    parents: v.parents.map((p) => [p.author, p.round, p.digest]),
    txs: v.txs,
    ts: v.timestampMs,
  }
}

/** Check the parents of a vertex of `round` by `author` (module doc). */
function checkParents(
  parents: readonly VertexRef[],
  round: number,
  author: number,
  committee: Committee,
): void {
  const seen = new Set<number>()
  let previousRound = 0
  parents.forEach((p, i) => {
    if (!committee.has(p.author)) throw fail(`parents[${i}].author is not in the committee`)
    if (p.round >= round) throw fail(`parents[${i}] is not of an earlier round`)
    if ((i === 0) !== (p.author === author))
      throw fail(
        i === 0 ? "parents[0] must be the author's own previous vertex" : `parents[${i}] is the author's own`,
      )
    if (seen.has(p.author)) throw fail(`parents[${i}]: two parents by author ${p.author}`)
    seen.add(p.author)
    if (p.round === round - 1) previousRound++
    if (p.round === 0 && !bytesEqual(p.digest, (genesisVertices(committee)[p.author] as Vertex).digest))
      throw fail(`parents[${i}] is not the genesis vertex of author ${p.author}`)
  })
  if (previousRound < committee.quorum)
    throw fail(
      `parents from ${previousRound} authors of round ${round - 1}, fewer than the quorum ${committee.quorum}`,
    )
}

function readBody(raw: unknown, committee: Committee, limits: VertexLimits): VertexInput {
  const b = readMap(raw, 'body', BODY_KEYS, fail)
  if (b.v !== VERTEX_VERSION) throw fail(`v must be ${VERTEX_VERSION}`)
  const epoch = readInt(b.epoch, 'epoch', 0, 2 ** 32 - 1, fail)
  if (epoch !== committee.epoch)
    throw new NodusError(
      'VERTEX_WRONG_EPOCH',
      `vertex: epoch ${epoch}, this committee runs ${committee.epoch}`,
      {
        peerAction: 'ignore',
        details: { epoch, expected: committee.epoch },
      },
    )
  const round = readInt(b.round, 'round', 1, MAX_ROUND, fail)
  const author = readInt(b.author, 'author', 0, committee.n - 1, fail)
  const timestampMs = readInt(b.ts, 'ts', 0, 2 ** 48 - 1, fail)
  const parents = readList(b.parents, 'parents', committee.n, fail).map((p, i): VertexRef => {
    const t = readList(p, `parents[${i}]`, 3, fail)
    if (t.length !== 3) throw fail(`parents[${i}] must be [author, round, digest]`)
    const d = t[2]
    if (!(d instanceof Uint8Array) || d.byteLength !== DIGEST_BYTES)
      throw fail(`parents[${i}] digest must be 32 bytes`)
    return {
      author: readInt(t[0], `parents[${i}].author`, 0, MAX_ROUND, fail),
      round: readInt(t[1], `parents[${i}].round`, 0, MAX_ROUND, fail),
      digest: d,
    }
  })
  checkParents(parents, round, author, committee)
  if (!Array.isArray(b.txs)) throw fail('txs must be a list')
  if (b.txs.length > limits.maxTxsPerVertex)
    throw tooLarge('transactions', limits.maxTxsPerVertex, b.txs.length)
  const txs = b.txs.map((t, i) => {
    if (!(t instanceof Uint8Array) || t.byteLength === 0) throw fail(`txs[${i}] must be non-empty bytes`)
    return t
  })
  return { epoch, round, author, parents, txs, timestampMs }
}

function readSig(v: unknown, committee: Committee): Uint8Array | HybridSignature {
  if (committee.signatureMode === 'ed25519') {
    if (!(v instanceof Uint8Array) || v.byteLength !== ED25519_SIGNATURE_BYTES)
      throw fail('sig must be 64 bytes')
    return v
  }
  const s = readMap(v, 'sig', ['ed25519', 'mldsa65'], fail)
  if (!(s.ed25519 instanceof Uint8Array) || s.ed25519.byteLength !== ED25519_SIGNATURE_BYTES)
    throw fail('sig.ed25519 must be 64 bytes')
  if (!(s.mldsa65 instanceof Uint8Array) || s.mldsa65.byteLength !== MLDSA65_SIGNATURE_BYTES)
    throw fail(`sig.mldsa65 must be ${MLDSA65_SIGNATURE_BYTES} bytes`)
  return { ed25519: s.ed25519, mldsa65: s.mldsa65 }
}

/**
 * Decode a vertex from untrusted bytes and check it against `committee` and `limits` (module doc);
 * its digest computed. The signature is not checked: pass the result to {@link verifyVertex} or a pool.
 *
 * @throws NodusError `VERTEX_TOO_LARGE` (reject) over `limits`; `VERTEX_WRONG_EPOCH` (ignore) for
 *   another epoch; `VERTEX_INVALID` (reject, `details.reason`) on anything else
 */
export function decodeVertex(bytes: Uint8Array, committee: Committee, limits: VertexLimits): DecodedVertex {
  if (!(bytes instanceof Uint8Array)) throw fail('not bytes')
  if (bytes.byteLength > limits.maxVertexBytes)
    throw tooLarge('vertex bytes', limits.maxVertexBytes, bytes.byteLength)
  let raw: unknown
  try {
    raw = dagCbor.decode(bytes)
  } catch {
    throw fail('not dag-cbor')
  }
  const env = readMap(raw, 'envelope', ['body', 'sig'], fail)
  const sig = readSig(env.sig, committee)
  const body = readBody(env.body, committee, limits)
  if (!bytesEqual(dagCbor.encode(env), bytes)) throw fail('not canonical dag-cbor')
  const message = signingBytes(VERTEX_DOMAIN, env.body as Record<string, unknown>)
  const key = committee.validators[body.author]
  if (key === undefined) throw fail('author is not in the committee')
  const check: SignatureCheck =
    sig instanceof Uint8Array
      ? { scheme: 'ed25519', publicKey: key.ed25519, message, signature: sig }
      : {
          scheme: 'hybrid',
          publicKey: committee.hybridKey(body.author) ?? { ed25519: key.ed25519, mldsa65: new Uint8Array(0) },
          message,
          signature: sig,
        }
  return { ...body, digest: blake3(bytes), bytes, check }
}

/** The vertex without its check, once its signature is known to verify (`valid`, e.g. from a pool).
 * @throws NodusError `SIGNATURE_INVALID` (ban) when `valid` is false */
export function verifiedVertex(d: DecodedVertex, valid: boolean): Vertex {
  if (!valid)
    throw new NodusError('SIGNATURE_INVALID', `vertex ${refString(d)}: signature does not verify`, {
      peerAction: 'ban',
      details: { kind: 'vertex', author: d.author, round: d.round, scheme: d.check.scheme },
    })
  const { check: _check, ...v } = d
  return v
}

const inlineVerifier = new SignatureVerifier()

/** Verify a decoded vertex's signature on this thread. @throws NodusError `SIGNATURE_INVALID` (ban) */
export function verifyVertex(d: DecodedVertex): Vertex {
  return verifiedVertex(d, inlineVerifier.verify(d.check))
}

/** {@link decodeVertex} then {@link verifyVertex}. @throws as both */
export function openVertex(bytes: Uint8Array, committee: Committee, limits: VertexLimits): Vertex {
  return verifyVertex(decodeVertex(bytes, committee, limits))
}

/**
 * Sign a vertex and encode it. The input is checked as a peer would check it first, so what this
 * returns is what peers accept.
 *
 * @throws NodusError `VERTEX_INVALID`, `VERTEX_TOO_LARGE` or `VERTEX_WRONG_EPOCH` as {@link decodeVertex}
 */
export async function signVertex(
  input: VertexInput,
  signer: VertexSigner,
  committee: Committee,
  limits: VertexLimits,
): Promise<Vertex> {
  const body = bodyMap(input)
  readBody(body, committee, limits)
  const sig = await signer.sign(signingBytes(VERTEX_DOMAIN, body))
  const bytes = dagCbor.encode({ body, sig })
  const { check: _check, ...v } = decodeVertex(bytes, committee, limits)
  // The input's own transaction arrays (equal bytes): a ledger that checked them when they were
  // submitted knows them by identity (ledger area `preverify`).
  return { ...v, txs: input.txs }
}
