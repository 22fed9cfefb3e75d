/**
 * Provider records keyed by any multihash in @libp2p/kad-dht 16.
 *
 * The libp2p Kademlia spec keys ADD_PROVIDER and GET_PROVIDERS by a multihash (go-libp2p-kad-dht
 * since 2019, PR 422), and kad-dht 16 sends the multihash. But its inbound handlers parse the key
 * with `CID.decode`, which accepts a bare multihash only when it is a 32-byte SHA2-256 (the CIDv0
 * form). Every other multihash, such as the BLAKE3 ones all nodus CIDs use, fails as "Invalid CID":
 * the handler aborts the stream, so a remote peer neither stores such a record nor answers for it.
 * Provider records for nodus content then only ever lived on the announcing node itself.
 *
 * {@link useMultihashProviderKeys} patches the two handlers of one kad-dht instance. A key that
 * `CID.decode` accepts goes to kad-dht's own handler unchanged. Any other key must decode as a
 * multihash (else InvalidMessageError, as before); ADD_PROVIDER then runs kad-dht's handler with the
 * key as a CIDv1 (raw codec) of that multihash (its provider store is keyed by the multihash, so the
 * record is the same), and GET_PROVIDERS is answered here the way kad-dht's handler answers: the
 * stored providers and the closest peers to the key from the routing table, the key echoed as sent.
 * These are private members of kad-dht 16.x: if their shape differs, nothing is patched and the
 * function returns false (test/net/provide-batch.test.ts then fails).
 */
import { InvalidMessageError, type PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

const RAW_CODEC = 0x55

interface PeerInfo {
  id: PeerId
  multiaddrs: Multiaddr[]
}

/** kad-dht's decoded Message, as far as these handlers read and write it. */
interface KadMessage {
  type: unknown
  key?: Uint8Array
  clusterLevel?: number
  closer: { id: Uint8Array; multiaddrs: Uint8Array[] }[]
  providers: { id: Uint8Array; multiaddrs: Uint8Array[] }[]
}

interface Handler {
  handle(peerId: PeerId, msg: KadMessage): Promise<KadMessage | undefined>
}

interface GetProvidersInternals extends Handler {
  providers: { getProviders(cid: CID): Promise<PeerId[]> }
  peerStore: { get(peerId: PeerId): Promise<{ id: PeerId; addresses: { multiaddr: Multiaddr }[] }> }
  peerRouting: { getClosestPeersOffline(key: Uint8Array): Promise<PeerInfo[]> }
  peerInfoMapper: (info: PeerInfo) => PeerInfo
}

/** The key as a CID when kad-dht's own parsing accepts it, else undefined. */
function asCid(key: Uint8Array): CID | undefined {
  try {
    return CID.decode(key)
  } catch {
    return undefined
  }
}

/** A CIDv1 (raw) of the multihash `key`; InvalidMessageError when it is not a multihash. */
function multihashCid(key: Uint8Array): CID {
  try {
    return CID.createV1(RAW_CODEC, Digest.decode(key))
  } catch {
    throw new InvalidMessageError('Invalid multihash key')
  }
}

function handlersOf(dht: unknown): { add: Handler; get: GetProvidersInternals } | undefined {
  const handlers = (dht as { rpc?: { handlers?: Record<string, unknown> } } | undefined)?.rpc?.handlers
  const add = handlers?.ADD_PROVIDER as Partial<Handler> | undefined
  const get = handlers?.GET_PROVIDERS as Partial<GetProvidersInternals> | undefined
  if (typeof add?.handle !== 'function' || typeof get?.handle !== 'function') return undefined
  if (
    typeof get.providers?.getProviders !== 'function' ||
    typeof get.peerStore?.get !== 'function' ||
    typeof get.peerRouting?.getClosestPeersOffline !== 'function' ||
    typeof get.peerInfoMapper !== 'function'
  )
    return undefined
  return { add: add as Handler, get: get as GetProvidersInternals }
}

const toPb = (info: PeerInfo): { id: Uint8Array; multiaddrs: Uint8Array[] } => ({
  id: info.id.toMultihash().bytes,
  multiaddrs: info.multiaddrs.map((m) => m.bytes),
})

/**
 * Let a kad-dht 16 service store and serve provider records under any multihash key (see the
 * module comment). Idempotent.
 *
 * @param dht the `KadDHT` service (`libp2p.services.dht`)
 * @returns true when applied, false when the handlers do not have kad-dht 16's shape
 */
export function useMultihashProviderKeys(dht: unknown): boolean {
  const h = handlersOf(dht)
  if (h === undefined) return false
  if ((h.add as { __nodusMultihash?: boolean }).__nodusMultihash === true) return true
  const add = h.add.handle.bind(h.add)
  h.add.handle = async (peerId, msg) => {
    if (msg.key === undefined || msg.key.byteLength === 0 || asCid(msg.key) !== undefined)
      return await add(peerId, msg)
    return await add(peerId, { ...msg, key: multihashCid(msg.key).bytes })
  }
  const get = h.get
  const original = get.handle.bind(get)
  get.handle = async (peerId, msg) => {
    if (msg.key === undefined || asCid(msg.key) !== undefined) return await original(peerId, msg)
    const key = msg.key
    const cid = multihashCid(key)
    const [providers, closer] = await Promise.all([
      get.providers.getProviders(cid).then((ids) =>
        Promise.all(
          ids.map(async (id): Promise<PeerInfo | undefined> => {
            try {
              const peer = await get.peerStore.get(id)
              return { id: peer.id, multiaddrs: peer.addresses.map((a) => a.multiaddr) }
            } catch {
              return undefined // no addresses known for this provider
            }
          }),
        ).then((infos) => infos.filter((i) => i !== undefined)),
      ),
      get.peerRouting.getClosestPeersOffline(key),
    ])
    const usable = (infos: PeerInfo[]): { id: Uint8Array; multiaddrs: Uint8Array[] }[] =>
      infos
        .map(get.peerInfoMapper)
        .filter((i) => i.multiaddrs.length > 0)
        .map(toPb)
    return {
      type: msg.type,
      key,
      ...(msg.clusterLevel === undefined ? {} : { clusterLevel: msg.clusterLevel }),
      closer: usable(closer),
      providers: usable(providers),
    }
  }
  Object.defineProperty(h.add, '__nodusMultihash', { value: true })
  return true
}
