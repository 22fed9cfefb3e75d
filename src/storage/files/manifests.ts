/**
 * Finding a file's signed manifest: from the local store (verified once, then cached), from connected
 * peers that hold it, or from DHT providers; and the newest valid holder update to apply to it.
 */
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { withDeadline } from '../../common/abort.ts'
import { NodusError } from '../../common/errors.ts'
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

/** Resolves manifests for gets and pins (`FileService.resolveManifest`). */
export class ManifestResolver extends FilePart {
  readonly #verified = new Map<string, SignedManifest>()

  /** `FileService.resolveManifest`. */
  async resolveManifest(cid: CID, options: { signal?: AbortSignal } = {}): Promise<SignedManifest> {
    const signal = options.signal ?? new AbortController().signal
    const { signed, holders } = await this.fetchManifest(cid, signal)
    const update = await this.#latestUpdate(signed, holders, signal)
    return update === undefined ? signed : { ...signed, manifest: applyHolderUpdate(signed.manifest, update) }
  }

  /**
   * The newest valid holder update for a manifest: kept locally (checked when it was kept), or from up
   * to 3 manifest holders. A remote one counts only if signed by the uploader or by a peer responsible
   * for the manifest as this node sees it (the 2 × manifestReplicas closest to its CID among this node
   * and its candidate peers), with a revision at most MAX_HOLDER_UPDATE_REVISION.
   */
  async #latestUpdate(
    signed: SignedManifest,
    holders: PeerId[],
    signal: AbortSignal,
  ): Promise<HolderUpdate | undefined> {
    const candidates: Uint8Array[] = []
    const local = this.deps.updates?.latest(signed.cid)
    if (local !== undefined) candidates.push(local)
    const client = this.deps.client
    if (local === undefined && client.latest !== undefined) {
      // The keepers closest to the manifest CID first: the closest one decides on extra parity from
      // the reads it counts (dynamic redundancy), so it should see them.
      const byId = new Map(holders.map((p) => [p.toString(), p]))
      const closest = closestTo(signed.cid.bytes, [...byId.keys()]).slice(0, 3)
      const answers = await Promise.allSettled(
        closest.map((p) => client.latest?.(byId.get(p) as PeerId, signed.cid, { signal })),
      )
      for (const a of answers) if (a.status === 'fulfilled' && a.value !== undefined) candidates.push(a.value)
    }
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

  /**
   * The signed manifest `cid` (verified) and the connected peers that say they hold it (asked also
   * when it is local: they know of repairs). Throws MANIFEST_NOT_FOUND, MANIFEST_INVALID,
   * SIGNATURE_INVALID.
   */
  async fetchManifest(cid: CID, signal: AbortSignal): Promise<{ signed: SignedManifest; holders: PeerId[] }> {
    // Peers that say they hold the manifest (asked also when it is local: they know of repairs).
    const peers = this.deps.peers.candidates().slice(0, 32)
    const answers = await Promise.allSettled(peers.map((p) => this.deps.client.has(p, [cid], { signal })))
    const holders = peers.filter((_, i) => {
      const a = answers[i]
      return a?.status === 'fulfilled' && a.value.have[0] === true
    })
    if (this.deps.store.has(cid)) {
      const key = cid.toString()
      let signed = this.#verified.get(key)
      if (signed === undefined) {
        signed = decodeManifest(await this.deps.store.get(cid, { signal }), cid)
        // Verified manifests are immutable: cache them (bounded) so hot files skip re-verification.
        if (this.#verified.size >= 256) this.#verified.delete(this.#verified.keys().next().value as string)
        this.#verified.set(key, signed)
      }
      return { signed, holders }
    }
    const tried = new Set<string>()
    const tryPeer = async (p: PeerId): Promise<SignedManifest | undefined> => {
      if (tried.has(p.toString())) return undefined
      tried.add(p.toString())
      try {
        const t0 = performance.now()
        const bytes = await this.deps.client.get(p, cid, { signal }).catch((err: unknown) => {
          // Wrong bytes or a broken protocol: the peer's fault (a bad signature inside is the uploader's).
          const fields = errFields(err)
          if (fields.peerAction !== undefined && !signal.aborted) {
            const ms = performance.now() - t0
            this.deps.observer?.transfer(p.toString(), 'get', { ok: false, ...fields, bytes: 0, ms })
          }
          throw err
        })
        const signed = decodeManifest(bytes, cid)
        // A cached copy, leased like any block: it goes away unless a pin renews it.
        await this.deps.store
          .put(cid, bytes, { signal, expiresAt: this.clock.now() + this.options.leaseMs })
          .catch(() => {})
        return signed
      } catch (err) {
        if (signal.aborted) throw err
        this.deps.logger.debug({ peer: p.toString(), code: errCode(err) }, 'manifest fetch failed')
        return undefined
      }
    }
    // 1. Connected peers that say they have it.
    for (const p of holders) {
      const got = await tryPeer(p)
      if (got !== undefined) return { signed: got, holders }
    }
    // 2. DHT providers.
    using dhtDeadline = withDeadline(signal, this.options.dhtTimeoutMs, 'manifest provider look-up')
    const dhtSignal = dhtDeadline.signal
    try {
      for await (const p of this.deps.peers.findProviders(cid, { signal: dhtSignal })) {
        if (p.toString() === this.deps.selfPeerId) continue
        const got = await tryPeer(p)
        if (got !== undefined) return { signed: got, holders: [p, ...holders] }
      }
    } catch (err) {
      if (signal.aborted) throw err
    }
    throw new NodusError('MANIFEST_NOT_FOUND', `no peer could supply manifest ${cidToString(cid)}`, {
      details: { cid: cidToString(cid), tried: tried.size },
    })
  }
}
