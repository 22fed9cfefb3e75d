/**
 * The manifest race (src/storage/files/manifest-race.ts) on fake peers and a fake clock (node:test's
 * mock timers): first verified answer wins, silent and lying holders neither stall nor poison it,
 * fetches stay bounded, the DHT joins after its delay or once the connected peers are exhausted.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { isNodusError, NodusError } from '../../src/common/errors.ts'
import {
  DEFAULT_MANIFEST_RACE_OPTIONS,
  type ManifestRaceDeps,
  raceManifest,
} from '../../src/storage/files/manifest-race.ts'

const PEERS: PeerId[] = await Promise.all(
  Array.from({ length: 10 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))),
)
const peer = (i: number): PeerId => PEERS[i] as PeerId

/** Lets every settled promise's callbacks run (setImmediate is not mocked). */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
}

/** A promise that settles only when its signal aborts (a peer that never answers). */
function silent<T>(signal: AbortSignal): Promise<T> {
  return new Promise((_resolve, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason), { once: true })
  })
}

/** Fake peers: per peer what `has` and `fetch` do; counts fetches in flight and records every call. */
function fakes(behaviour: {
  has?: (i: number, signal: AbortSignal) => Promise<boolean>
  fetch?: (i: number, signal: AbortSignal) => Promise<string>
  providers?: (signal: AbortSignal) => AsyncIterable<PeerId>
  candidates?: number[]
  self?: number
}) {
  const log = { fetched: [] as number[], asked: [] as number[], inFlight: 0, maxInFlight: 0, aborted: 0 }
  const index = (p: PeerId): number => PEERS.findIndex((q) => q.equals(p))
  const deps: ManifestRaceDeps<string> = {
    candidates: (behaviour.candidates ?? [0, 1, 2, 3, 4, 5]).map(peer),
    self: behaviour.self === undefined ? 'nobody' : peer(behaviour.self).toString(),
    has: (p, signal) => {
      log.asked.push(index(p))
      return (behaviour.has ?? (async () => false))(index(p), signal)
    },
    fetch: async (p, signal) => {
      log.fetched.push(index(p))
      log.inFlight++
      log.maxInFlight = Math.max(log.maxInFlight, log.inFlight)
      signal.addEventListener('abort', () => log.aborted++, { once: true })
      try {
        return await (behaviour.fetch ?? (async () => Promise.reject(new Error('none'))))(index(p), signal)
      } finally {
        log.inFlight--
      }
    },
    providers:
      behaviour.providers ??
      async function* () {
        // none
      },
  }
  return { deps, log }
}

const notHere = (): Promise<string> => Promise.reject(new NodusError('SHARD_MISSING', 'not here'))

test('the first direct keeper to answer wins; peers that never answer `has` do not hold it up', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const { deps, log } = fakes({
    has: (_i, signal) => silent(signal),
    fetch: async (i, signal) => (i === 1 ? `manifest from ${i}` : silent(signal)),
  })
  const got = await raceManifest(deps, DEFAULT_MANIFEST_RACE_OPTIONS, new AbortController().signal)
  assert.equal(got.value, 'manifest from 1')
  assert.ok(got.from.equals(peer(1)))
  assert.deepEqual(
    got.holders.map((p) => p.toString()),
    [peer(1).toString()],
  )
  assert.deepEqual(log.fetched, [0, 1, 2], 'the three closest asked directly, at once')
  assert.deepEqual(log.asked, [3, 4, 5], 'the others asked `has`')
  await flush()
  assert.equal(log.aborted, 3, 'every request still open is aborted once the race is won')
})

test('a keeper that never answers and one whose manifest does not verify neither stall nor poison it', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const { deps, log } = fakes({
    // 3 and 5 say they hold it.
    has: async (i) => i === 3 || i === 5,
    fetch: async (i, signal) => {
      if (i === 0) return silent(signal)
      if (i === 1) throw new NodusError('CID_MISMATCH', 'bad manifest bytes', { peerAction: 'ban' })
      if (i === 5) return 'good'
      return notHere()
    },
  })
  const options = { ...DEFAULT_MANIFEST_RACE_OPTIONS, parallel: 2 }
  const got = await raceManifest(deps, options, new AbortController().signal)
  assert.equal(got.value, 'good')
  assert.ok(got.from.equals(peer(5)))
  assert.ok(log.maxInFlight <= 2, `at most 2 fetches at once (saw ${log.maxInFlight})`)
  assert.ok(!log.fetched.includes(4), 'a peer that said no is not fetched from')
  assert.equal(log.fetched.filter((i) => i === 0).length, 1, 'each peer fetched once')
})

test('the DHT joins after providerDelayMs while connected peers are silent, and its providers are raced', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  let lookups = 0
  const { deps, log } = fakes({
    has: (_i, signal) => silent(signal),
    fetch: async (i, signal) => (i === 8 ? 'from the DHT' : silent(signal)),
    providers: async function* () {
      lookups++
      yield peer(9) // this node itself: skipped
      yield peer(8)
    },
    self: 9,
  })
  const race = raceManifest(
    deps,
    { ...DEFAULT_MANIFEST_RACE_OPTIONS, parallel: 4 },
    new AbortController().signal,
  )
  await flush()
  assert.equal(lookups, 0, 'no DHT look-up before the delay')
  t.mock.timers.tick(DEFAULT_MANIFEST_RACE_OPTIONS.providerDelayMs - 1)
  await flush()
  assert.equal(lookups, 0)
  t.mock.timers.tick(1)
  const got = await race
  assert.equal(lookups, 1)
  assert.equal(got.value, 'from the DHT')
  assert.ok(!log.fetched.includes(9), 'never this node')
})

test('once every connected peer said no, the DHT is asked at once; nothing anywhere is MANIFEST_NOT_FOUND', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  let lookups = 0
  const { deps } = fakes({
    fetch: () => notHere(),
    providers: async function* () {
      lookups++
      yield peer(7)
    },
  })
  const err = await raceManifest(deps, DEFAULT_MANIFEST_RACE_OPTIONS, new AbortController().signal).catch(
    (e: unknown) => e,
  )
  assert.equal(lookups, 1, 'no timer needed')
  assert.ok(isNodusError(err, 'MANIFEST_NOT_FOUND'), String(err))
  assert.equal(err.details?.tried, 4, 'three direct keepers and the provider')
})

test('an abort ends the race with its reason and aborts every request', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const { deps, log } = fakes({ has: (_i, s) => silent(s), fetch: (_i, s) => silent(s) })
  const ac = new AbortController()
  const race = raceManifest(deps, DEFAULT_MANIFEST_RACE_OPTIONS, ac.signal)
  await flush()
  const reason = new NodusError('ABORTED', 'client went away')
  ac.abort(reason)
  await assert.rejects(race, (err) => err === reason)
  await flush()
  assert.equal(log.aborted, 3)
})
