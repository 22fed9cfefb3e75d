/**
 * Pins: asking every holder of a file's shards and every keeper of its manifest, with signed pin
 * requests, to keep them until a time (or for one lease, which the pinning node renews).
 */
import type { CID } from 'multiformats/cid'
import { MAX_RECORD_CIDS, signPin } from '../protocol/orders.ts'
import { type FileContext, FilePart } from './context.ts'
import type { SignedManifest } from './manifest.ts'
import type { ManifestResolver } from './manifests.ts'

/** Pins files (`FileService.pin`). */
export class FilePinner extends FilePart {
  readonly #manifests: ManifestResolver

  constructor(ctx: FileContext, manifests: ManifestResolver) {
    super(ctx)
    this.#manifests = manifests
  }

  /** `FileService.pin`. */
  async pin(
    cid: CID,
    expiresAt: number | undefined,
    options: { signal?: AbortSignal; manifest?: SignedManifest; critical?: boolean; grant?: Uint8Array } = {},
  ): Promise<{ extended: number; missing: number; unreachable: number }> {
    const signal = options.signal ?? new AbortController().signal
    const signed = options.manifest ?? (await this.#manifests.resolveManifest(cid, { signal }))
    // No TTL: a lease, renewed by the pinning node while the pin lasts.
    const until = expiresAt ?? this.clock.now() + this.options.leaseMs
    const byHolder = new Map<string, CID[]>()
    // The manifest's keepers may hold no shard: they get the manifest CID alone.
    const { holders: keepers } = await this.#manifests.fetchManifest(signed.cid, signal)
    for (const p of keepers) byHolder.set(p.toString(), [signed.cid])
    for (const seg of signed.manifest.segments) {
      for (const sh of seg.shards) {
        for (const h of sh.holders) {
          let list = byHolder.get(h)
          if (list === undefined) {
            list = [signed.cid]
            byHolder.set(h, list)
          }
          list.push(sh.cid)
        }
      }
    }
    let extended = 0
    let missing = 0
    let unreachable = 0
    const local = this.deps.store.extendExpiry
    if (local !== undefined) {
      for (const c of [signed.cid, ...(byHolder.get(this.deps.selfPeerId) ?? [])]) {
        if (await local.call(this.deps.store, c, until)) extended++
      }
    }
    if (options.critical === true) await this.deps.onCriticalPin?.(signed.cid, until)
    byHolder.delete(this.deps.selfPeerId)
    await Promise.all(
      [...byHolder.entries()].map(async ([holder, cids]) => {
        for (let i = 0; i < cids.length; i += MAX_RECORD_CIDS) {
          const batch = cids.slice(i, i + MAX_RECORD_CIDS)
          try {
            // Signed: a holder extends only its pinner's own claims, a granting uploader's, or paid ones.
            const pin = await signPin(
              {
                pinner: this.deps.selfPeerId,
                holder,
                cids: batch,
                expiresAt: until,
                issuedAt: this.clock.now(),
                manifest: signed.cid,
                ...(options.critical === true && i === 0 ? { critical: true } : {}),
              },
              this.deps.signEd25519,
              options.grant,
            )
            const ok = await this.deps.client.pin(this.ctx.peerId(holder), pin, batch.length, { signal })
            // The manifest CID leads each holder's list; most holders do not keep the manifest.
            ok.forEach((e, j) => {
              if (e) extended++
              else if (!(i === 0 && j === 0)) missing++
            })
          } catch (err) {
            if (signal.aborted) throw err
            unreachable++
            return
          }
        }
      }),
    )
    return { extended, missing, unreachable }
  }
}
