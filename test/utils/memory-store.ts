import type { CID } from 'multiformats/cid'
import { NodusError } from '../../src/common/errors.ts'
import { blake3 } from '../../src/crypto/index.ts'

/** An in-memory block store with the ShardStore surface the protocol and file service use. */
export class MemoryStore {
  readonly blocks = new Map<string, Uint8Array>()
  capacityBytes: number

  constructor(capacityBytes = 1 << 30) {
    this.capacityBytes = capacityBytes
  }

  #bytes(): number {
    let n = 0
    for (const b of this.blocks.values()) n += b.byteLength
    return n
  }

  async put(
    cid: CID,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    _options?: { signal?: AbortSignal; expectedSize?: number },
  ): Promise<{ size: number; created: boolean }> {
    let bytes: Uint8Array
    if (data instanceof Uint8Array) bytes = data
    else {
      const parts: Uint8Array[] = []
      for await (const c of data) parts.push(c)
      bytes = Buffer.concat(parts)
    }
    const d = blake3(bytes)
    if (!d.every((b, i) => b === cid.multihash.digest[i]))
      throw new NodusError('CID_MISMATCH', 'bytes do not match cid')
    const created = !this.blocks.has(cid.toString())
    if (created && this.#bytes() + bytes.byteLength > this.capacityBytes)
      throw new NodusError('STORE_FULL', 'full')
    this.blocks.set(cid.toString(), bytes)
    return { size: bytes.byteLength, created }
  }

  async get(cid: CID): Promise<Uint8Array> {
    const b = this.blocks.get(cid.toString())
    if (b === undefined) throw new NodusError('SHARD_MISSING', 'missing')
    return b
  }

  async *read(cid: CID, options: { offset?: number; length?: number } = {}): AsyncGenerator<Uint8Array> {
    const b = await this.get(cid)
    const off = options.offset ?? 0
    yield b.subarray(off, off + (options.length ?? b.byteLength - off))
  }

  /** The whole shard, checked against the CID (as ShardStore.readForAudit); SHARD_MISSING when absent or bad. */
  async readForAudit(cid: CID): Promise<Uint8Array> {
    const b = await this.get(cid)
    const d = blake3(b)
    if (!d.every((x, i) => x === cid.multihash.digest[i])) throw new NodusError('SHARD_MISSING', 'corrupt')
    return b
  }

  /** Expiry is not modelled in memory: true when the block is held. */
  async extendExpiry(cid: CID, _expiresAt: number | undefined): Promise<boolean> {
    return this.has(cid)
  }

  stat(cid: CID): { size: number } | undefined {
    const b = this.blocks.get(cid.toString())
    return b === undefined ? undefined : { size: b.byteLength }
  }

  has(cid: CID): boolean {
    return this.blocks.has(cid.toString())
  }

  usage(): { freeBytes: number } {
    return { freeBytes: this.capacityBytes - this.#bytes() }
  }
}
