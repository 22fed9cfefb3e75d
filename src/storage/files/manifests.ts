/**
 * Finding a file's signed manifest: from the local store (verified once, then cached), else from the
 * first connected peers or DHT providers to send one that verifies (manifest-race.ts); and the newest
 * valid holder update to apply to it, asked of the closest keepers at the same time.
 */
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { withDeadline } from '../../common/abort.ts'
import { isNodusError, NodusError } from '../../common/errors.ts'
import { cidToString } from '../codec/cid.ts'
import { closestTo, responsibleFor } from '../keeper/responsibility.ts'
import { errCode, errFields, FilePart } from './context.ts'
import {
  applyHolderUpdate,
  decodeHolderUpdate,
  type HolderUpdate,
  openHolderUpdate,
} from './holder-update.ts'
import { decodeManifest, type SignedManifest } from './manifest.ts'
import { DEFAULT_MANIFEST_RACE_OPTIONS, raceManifest } from './manifest-race.ts'

/**
 * How long `resolveManifest` waits for the holder updates it asked for once the manifest is in hand:
 * as long again as the manifest took, within these bounds, ms. A keeper that never answers delays the
 * get by at most the upper bound (it is still told of the read: it counts on receipt).
 */
export const LATEST_UPDATE_WAIT_MS = { min: 100, max: 1_000 } as const

/** Keepers (closest connected peers to the manifest CID) asked for the latest holder update. */
const UPDATE_KEEPERS = 3

/** Resolves manifests for gets and pins (`FileService.resolveManifest`). */
export class ManifestResolver extends FilePart {
  readonly #verified = new Map<string, SignedManifest>()

  /**
   * `FileService.resolveManifest`: the verified manifest with the newest valid holder update applied.
   * The manifest is raced for (manifest-race.ts) while the closest keepers are asked for the holder
   * update. `warm` (a get that will fetch shards next): the `warmPeers` connected peers closest to
   * the CID get a bulk socket keyed in the background meanwhile (likely holders: in a network of a few
   * more than k + m peers nearly every peer holds a shard of a segment; elsewhere the unused ones
   * close after the bulk channel's idle timeout).
   */
  async resolveManifest(
    cid: CID,
    options: { signal?: AbortSignal; warm?: boolean } = {},
  ): Promise<SignedManifest> {
    const signal = options.signal ?? new AbortController().signal
    const t0 = performance.now()
    const candidates = this.#byCloseness(cid)
    const local = this.deps.updates?.latest(cid)
    // The keepers closest to the manifest CID: the closest one decides on extra parity from the reads
    // it counts (dynamic redundancy), so it should see them. Asked now, verified once the manifest is in.
    const asked = local === undefined ? this.#askLatest(candidates.slice(0, UPDATE_KEEPERS), cid, signal) : []
    if (options.warm === true) this.#warm(candidates)
    const signed = this.#local(cid) ?? (await this.#race(cid, candidates, signal)).value
    const elapsed = performance.now() - t0
    const wait = Math.min(LATEST_UPDATE_WAIT_MS.max, Math.max(LATEST_UPDATE_WAIT_MS.min, elapsed))
    const remote = await settleWithin(asked, wait, signal)
    const update = this.#latestUpdate(signed, local, remote)
    this.deps.metrics?.getPhaseSeconds?.observe({ phase: 'manifest' }, (performance.now() - t0) / 1000)
    return update === undefined ? signed : { ...signed, manifest: applyHolderUpdate(signed.manifest, update) }
  }

  /** Connected shard peers, closest to `cid` first. */
  #byCloseness(cid: CID): PeerId[] {
    const peers = this.deps.peers.candidates()
    const byId = new Map(peers.map((p) => [p.toString(), p]))
    return closestTo(cid.bytes, [...byId.keys()]).map((id) => byId.get(id) as PeerId)
  }

  /** Key bulk sockets to the first `warmPeers` of `candidates` in the background (bounded). */
  #warm(candidates: readonly PeerId[]): void {
    const warm = this.deps.client.warm
    if (warm === undefined) return
    for (const p of candidates.slice(0, this.options.warmPeers)) {
      if (p.toString() !== this.deps.selfPeerId) warm.call(this.deps.client, p)
    }
  }

  /** Ask each of `keepers` for its latest holder update of `cid` (requests start now). */
  #askLatest(keepers: readonly PeerId[], cid: CID, signal: AbortSignal): Promise<Uint8Array | undefined>[] {
    const client = this.deps.client
    if (client.latest === undefined) return []
    return keepers
      .filter((p) => p.toString() !== this.deps.selfPeerId)
      .map((p) => {
        const asked = (client.latest as NonNullable<typeof client.latest>).call(client, p, cid, { signal })
        // Handled here too: the manifest may fail first, and nobody would wait for this answer then.
        asked.catch(() => {})
        return asked
      })
  }

  /**
   * The newest valid holder update for a manifest: kept locally (checked when it was kept), or from the
   * keepers asked. A remote one counts only if signed by the uploader or by a peer responsible for the
   * manifest as this node sees it (the 2 × manifestReplicas closest to its CID among this node and its
   * candidate peers), with a revision at most MAX_HOLDER_UPDATE_REVISION.
   */
  #latestUpdate(
    signed: SignedManifest,
    local: Uint8Array | undefined,
    remote: readonly Uint8Array[],
  ): HolderUpdate | undefined {
    const candidates = local === undefined ? [...remote] : [local]
    let best: HolderUpdate | undefined
    const uploader = signed.manifest.uploader.peerId
    let responsible: Set<string> | undefined
    const authority = {
      has: (peer: string): boolean => {
        responsible ??= responsibleFor(
          signed.cid.bytes,
          [this.deps.selfPeerId, ...this.deps.peers.candidates().map((p) => p.toString())],
          this.options.manifestReplicas,
        )
        return peer === uploader || responsible.has(peer)
      },
    }
    for (const bytes of candidates) {
      try {
        const u =
          bytes === local
            ? decodeHolderUpdate(bytes, signed).update
            : openHolderUpdate(bytes, signed, { authority }).update
        if (best === undefined || u.revision > best.revision) best = u
      } catch (err) {
        this.deps.logger.debug({ code: errCode(err) }, 'ignored a bad holder update')
      }
    }
    return best
  }

  /** The manifest from the local store (verified once, then cached), or undefined when not local. */
  #local(cid: CID): SignedManifest | undefined {
    return this.deps.store.has(cid) ? this.#verified.get(cid.toString()) : undefined
  }

  /** The local manifest, read and verified (then cached: verified manifests are immutable). */
  async #readLocal(cid: CID, signal: AbortSignal): Promise<SignedManifest> {
    const key = cid.toString()
    let signed = this.#verified.get(key)
    if (signed === undefined) {
      signed = decodeManifest(await this.deps.store.get(cid, { signal }), cid)
      if (this.#verified.size >= 256) this.#verified.delete(this.#verified.keys().next().value as string)
      this.#verified.set(key, signed)
    }
    return signed
  }

  /**
   * The manifest from peers: local when stored here, else raced for (manifest-race.ts) among the
   * connected peers (the closest to the CID asked directly, the others `has`), then DHT providers.
   * Throws MANIFEST_NOT_FOUND, or the signal's reason.
   */
  async #race(
    cid: CID,
    candidates: readonly PeerId[],
    signal: AbortSignal,
  ): Promise<{ value: SignedManifest; holders: PeerId[] }> {
    if (this.deps.store.has(cid)) return { value: await this.#readLocal(cid, signal), holders: [] }
    const fetch = async (p: PeerId, s: AbortSignal): Promise<SignedManifest> => {
      const t0 = performance.now()
      const bytes = await this.deps.client.get(p, cid, { signal: s, small: true }).catch((err: unknown) => {
        // Wrong bytes or a broken protocol: the peer's fault (a bad signature inside is the uploader's).
        const fields = errFields(err)
        if (fields.peerAction !== undefined && !s.aborted) {
          const ms = performance.now() - t0
          this.deps.observer?.transfer(p.toString(), 'get', { ok: false, ...fields, bytes: 0, ms })
        }
        this.deps.logger.debug({ peer: p.toString(), code: errCode(err) }, 'manifest fetch failed')
        throw err
      })
      const signed = decodeManifest(bytes, cid)
      // A cached copy, leased like any block: it goes away unless a pin renews it.
      await this.deps.store
        .put(cid, bytes, { signal: s, expiresAt: this.clock.now() + this.options.leaseMs })
        .catch(() => {})
      return signed
    }
    const peers = this.deps.peers
    const dhtTimeoutMs = this.options.dhtTimeoutMs
    try {
      return await raceManifest(
        {
          candidates,
          self: this.deps.selfPeerId,
          has: async (p, s) => (await this.deps.client.has(p, [cid], { signal: s })).have[0] === true,
          fetch,
          providers: async function* (s) {
            using dhtDeadline = withDeadline(s, dhtTimeoutMs, 'manifest provider look-up')
            yield* peers.findProviders(cid, { signal: dhtDeadline.signal })
          },
        },
        DEFAULT_MANIFEST_RACE_OPTIONS,
        signal,
      )
    } catch (err) {
      if (isNodusError(err, 'MANIFEST_NOT_FOUND')) {
        throw new NodusError('MANIFEST_NOT_FOUND', `no peer could supply manifest ${cidToString(cid)}`, {
          details: { cid: cidToString(cid), ...(err.details ?? {}) },
        })
      }
      throw err
    }
  }

  /**
   * The signed manifest `cid` (verified) and every connected peer (up to 32) that says it holds it,
   * asked also when it is local (they know of repairs): pins extend the manifest on each. Waits for
   * every answer; gets use `resolveManifest`, which does not. Throws MANIFEST_NOT_FOUND,
   * MANIFEST_INVALID, SIGNATURE_INVALID.
   */
  async fetchManifest(cid: CID, signal: AbortSignal): Promise<{ signed: SignedManifest; holders: PeerId[] }> {
    const peers = this.deps.peers.candidates().slice(0, 32)
    const answers = await Promise.allSettled(peers.map((p) => this.deps.client.has(p, [cid], { signal })))
    const holders = peers.filter((_, i) => {
      const a = answers[i]
      return a?.status === 'fulfilled' && a.value.have[0] === true
    })
    const got = await this.#race(cid, this.#byCloseness(cid), signal)
    for (const p of got.holders) if (!holders.some((h) => h.equals(p))) holders.push(p)
    return { signed: got.value, holders }
  }
}

/**
 * The values of `asked` that fulfilled (undefined ones dropped) within `ms` (all of them if sooner);
 * the rest are left to finish or fail on their own. Rejects only when `signal` aborts.
 */
async function settleWithin(
  asked: readonly Promise<Uint8Array | undefined>[],
  ms: number,
  signal: AbortSignal,
): Promise<Uint8Array[]> {
  if (asked.length === 0) return []
  const got: Uint8Array[] = []
  const each = asked.map((p) =>
    p.then(
      (v) => {
        if (v !== undefined) got.push(v)
      },
      () => {},
    ),
  )
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  try {
    await Promise.race([
      Promise.all(each),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms)
      }),
      new Promise<void>((_resolve, reject) => {
        onAbort = () => reject(signal.reason)
        if (signal.aborted) onAbort()
        else signal.addEventListener('abort', onAbort, { once: true })
      }),
    ])
  } finally {
    clearTimeout(timer)
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
  return [...got]
}
