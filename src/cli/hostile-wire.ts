/**
 * The hostile peer's requests on the wire (src/cli/hostile.ts): what it sends where the honest
 * clients (ShardClient, the CLI's API client) would not let it: puts that read the answer while the
 * body goes out, puts that never send their body, holder updates it has no authority to sign, and
 * raw HTTP requests with a Host header of its choosing.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { hybridPublicKey, type NodeIdentity, signHybrid } from '../crypto/index.ts'
import { lengthPrefixed, StreamReader, sendAll, sendWithBackpressure } from '../net/index.ts'
import { parseCid, signHolderUpdate } from '../storage/index.ts'

/** Largest answer frame read, bytes. */
const MAX_ANSWER_BYTES = 64 * 1024

function putHeader(cid: CID, size: number, order: Uint8Array): Uint8Array {
  return lengthPrefixed(dagCbor.encode({ v: 1, op: 'put', cid: cid.bytes, size, order }))
}

/**
 * A put on `stream` (a `/nodus/shard/1.0.0` stream) that reads the answer while the body goes out,
 * so a holder that refuses before reading a byte (QUOTA_EXCEEDED, PEER_BUSY) is seen at once:
 * ShardClient.put sends the whole body first, and a body larger than the stream window then waits for
 * the request timeout. Resolves with the refusal's code, or undefined when the block was stored.
 * Throws when the stream fails (reset, `signal`).
 */
export async function rawPut(
  stream: Stream,
  cid: CID,
  body: Uint8Array,
  order: Uint8Array,
  signal: AbortSignal,
): Promise<string | undefined> {
  const answer = new StreamReader(stream, { signal }).readFrame(MAX_ANSWER_BYTES)
  const sending = (async () => {
    await sendWithBackpressure(stream, putHeader(cid, body.byteLength, order), signal)
    await sendAll(stream, body, signal)
  })()
  sending.catch(() => {}) // a refusal resets the stream under it
  try {
    const resp = dagCbor.decode(await answer) as { ok?: boolean; code?: unknown }
    if (resp.ok === true) {
      await stream.close({ signal })
      return undefined
    }
    return typeof resp.code === 'string' ? resp.code : 'PROTOCOL_ERROR'
  } finally {
    if (stream.status !== 'closed') stream.abort(new Error('put over'))
  }
}

/** How a stalled put ended, and after how long (ms). */
export interface StallOutcome {
  /**
   * The holder's error code (PEER_BUSY, QUOTA_EXCEEDED, TIMEOUT, …); `ACCEPTED` when it answered ok (a
   * put without its body!); `CUT_OFF` when it reset the stream (`STREAM_REFUSED` before the header
   * went out); `STILL_OPEN` when neither happened within the cutoff (the stream is then aborted by us).
   */
  code: string
  ms: number
}

/**
 * Send a put header that declares `declaredBytes` under `order` on `stream`, send no body, and wait
 * for the holder's answer or reset, at most `cutoffMs`. Never rejects.
 */
export async function stalledPut(
  stream: Stream,
  cid: CID,
  declaredBytes: number,
  order: Uint8Array,
  cutoffMs: number,
  signal: AbortSignal,
): Promise<StallOutcome> {
  const t0 = performance.now()
  const cutoff = AbortSignal.any([signal, AbortSignal.timeout(cutoffMs)])
  try {
    stream.send(putHeader(cid, declaredBytes, order))
  } catch {
    return { code: 'STREAM_REFUSED', ms: 0 } // reset at once: over the per-connection stream limit
  }
  try {
    const frame = await new StreamReader(stream, { signal: cutoff }).readFrame(MAX_ANSWER_BYTES)
    const resp = dagCbor.decode(frame) as { ok?: unknown; code?: unknown }
    const code = resp.ok === true ? 'ACCEPTED' : typeof resp.code === 'string' ? resp.code : 'PROTOCOL_ERROR'
    return { code, ms: performance.now() - t0 }
  } catch {
    if (!cutoff.aborted) return { code: 'CUT_OFF', ms: performance.now() - t0 }
    stream.abort(new Error('the hostile peer gives up'))
    return { code: 'STILL_OPEN', ms: performance.now() - t0 }
  }
}

/** A manifest as the API's public `GET /files/:cid/manifest` shows it (the fields used here). */
export interface ManifestView {
  cid: string
  k: number
  m: number
  segments: { shards: { cid: string; holders: string[] }[] }[]
}

/** The manifest's CID and every shard CID of `view`, at most 1,024 (one pin request). */
export function blocksOf(view: ManifestView): CID[] {
  return [parseCid(view.cid), ...view.segments.flatMap((s) => s.shards.map((sh) => parseCid(sh.cid)))].slice(
    0,
    1024,
  )
}

/**
 * A holder update of `view`'s manifest that `id` has no authority to sign, with revision 2^53 − 1
 * (what issue 17 found accepted by 5 keepers): the manifest's own holders, well formed, validly signed.
 */
export async function forgedHolderUpdate(
  view: ManifestView,
  id: NodeIdentity,
  nowMs: number,
): Promise<Uint8Array> {
  const u = await signHolderUpdate(
    {
      manifest: parseCid(view.cid),
      revision: Number.MAX_SAFE_INTEGER,
      holders: view.segments.map((s) =>
        s.shards.slice(0, view.k + view.m).map((sh) => sh.holders.slice(0, 64)),
      ),
      signer: { peerId: id.peerId.toString(), publicKey: hybridPublicKey(id) },
      createdAt: nowMs,
    },
    (msg) => signHybrid(id, msg),
  )
  return u.bytes
}

/** One HTTP request of an API attack. */
export interface HttpAttack {
  method: string
  path: string
  headers: Record<string, string>
  body?: string
}

/**
 * Without the token, what any web page can send to 127.0.0.1 (CORS-simple `text/plain`): an upload,
 * pins and a peer connection, and an unpin of the honest file `cid`.
 */
export function unauthenticatedRequests(cid: string): HttpAttack[] {
  const plain = { 'content-type': 'text/plain' }
  const body = 'x'.repeat(64)
  return [
    { method: 'POST', path: '/files?name=hostile', headers: plain, body },
    { method: 'POST', path: `/files/${cid}/pin`, headers: plain, body },
    { method: 'POST', path: '/network/connect', headers: plain, body },
    { method: 'DELETE', path: `/files/${cid}`, headers: plain, body },
    { method: 'POST', path: '/files', headers: plain, body },
    { method: 'POST', path: `/files/${cid}/pin`, headers: plain, body },
  ]
}

/** Requests that reach the API through DNS rebinding: a page served from evil.example, on `port`. */
export function rebindingRequests(port: string): HttpAttack[] {
  const host = `evil.example:${port}`
  return [
    { method: 'GET', path: '/system/info', headers: { host } },
    { method: 'GET', path: '/files', headers: { host } },
    {
      method: 'POST',
      path: '/files?name=rebound',
      headers: { host, 'content-type': 'text/plain' },
      body: 'x',
    },
  ]
}

const { request: httpRequest } = process.getBuiltinModule('node:http')

/**
 * One raw HTTP request to `base` (node:http, so the Host header is ours to set); resolves with the
 * status once the response has been read. Throws on a connection error (the socket's `code`) or when
 * `signal` aborts.
 */
export function exchange(base: string, a: HttpAttack, signal: AbortSignal): Promise<number> {
  // Content-Length always: Node sends a DELETE's body without one (nor chunked), which the server
  // would read as a malformed second request.
  const headers = { ...a.headers, 'content-length': String(Buffer.byteLength(a.body ?? '')) }
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      new URL(a.path, base),
      { method: a.method, headers, agent: false, signal },
      (res) => {
        res.resume()
        res.once('end', () => resolve(res.statusCode ?? 0))
        res.once('error', reject)
      },
    )
    req.once('error', reject)
    req.end(a.body)
  })
}
