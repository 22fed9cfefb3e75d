/**
 * Peer actions: docs/ERRORS.md ("What each code does to the peer") against the code, the reject
 * window, ban expiry and renewal, the cap, persistence (in memory and in LMDB). Fake clock throughout.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import ts from 'typescript'
import { type ErrorCode, NodusError, type PeerAction } from '../../src/common/errors.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { HTTP_STATUS } from '../../src/config/index.ts'
import {
  type BanRecord,
  type InteractionKind,
  LmdbBanStore,
  MemoryBanStore,
  PeerActions,
  type PeerActionsOptions,
  type TransferSample,
} from '../../src/trust/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'

/** The shared fake clock, starting at this file's epoch. */
const clockAt = (): FakeClock => new FakeClock(1_000_000)

const SELF = 'self-peer'
const OPTIONS: PeerActionsOptions = {
  banMs: 60_000,
  rejectWindowMs: 10_000,
  rejectsToDisconnect: 3,
  maxBans: 100,
  maxTrackedPeers: 100,
}

/** PeerActions with recording fakes. */
function harness(options: Partial<PeerActionsOptions> = {}, bans = new MemoryBanStore()) {
  const clock = clockAt()
  const interactions: { to: string; kind: InteractionKind }[] = []
  const samples: { peer: string; sample: TransferSample }[] = []
  const disconnects: string[] = []
  const actions: string[] = []
  const pa = new PeerActions(
    {
      self: SELF,
      clock,
      trust: {
        recordInteraction: (from, to, kind) => {
          assert.equal(from, SELF)
          interactions.push({ to, kind })
        },
      },
      perf: { record: (peer, sample) => samples.push({ peer, sample }) },
      disconnect: async (peer) => {
        disconnects.push(peer)
      },
      bans,
      logger: silentLogger(),
      metrics: { peerActions: { inc: ({ action }) => actions.push(action) } },
    },
    { ...OPTIONS, ...options },
  )
  return { pa, clock, interactions, samples, disconnects, actions, bans }
}

// --- docs/ERRORS.md, "What each code does to the peer" -------------------------------------------

interface DocRow {
  code: string
  action: PeerAction
  effect: 'nothing' | 'penalized' | 'banned'
}

async function documentedRows(): Promise<DocRow[]> {
  const doc = await readFile(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8')
  const start = doc.indexOf('## What each code does to the peer')
  assert.ok(start >= 0, 'docs/ERRORS.md has no "What each code does to the peer" section')
  const end = doc.indexOf('\n## ', start + 1)
  const section = doc.slice(start, end < 0 ? undefined : end)
  const rows: DocRow[] = []
  for (const line of section.split('\n')) {
    const m = /^\| `([A-Z_]+)` \| `(ignore|reject|ban)` \| [^|]+ \| ([^|]+) \|$/.exec(line)
    if (m === null) continue
    const text = (m[3] as string).trim()
    const effect = text.startsWith('nothing')
      ? 'nothing'
      : text.startsWith('penalized')
        ? 'penalized'
        : text.startsWith('banned')
          ? 'banned'
          : undefined
    assert.ok(effect !== undefined, `unknown effect "${text}" for ${m[1]}`)
    rows.push({ code: m[1] as string, action: m[2] as PeerAction, effect })
  }
  return rows
}

/** Every `new NodusError('CODE', …, { peerAction: 'x' })` written literally under src/. */
async function literalPairsInSource(): Promise<Map<string, string[]>> {
  const root = new URL('../../src/', import.meta.url).pathname
  const pairs = new Map<string, string[]>()
  const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts'))
  for (const file of files) {
    const text = await readFile(join(root, file), 'utf8')
    if (!text.includes('peerAction')) continue
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
    const visit = (n: ts.Node): void => {
      if (ts.isNewExpression(n) && n.expression.getText(sf) === 'NodusError') {
        const [code, , opts] = n.arguments ?? []
        if (
          code !== undefined &&
          ts.isStringLiteral(code) &&
          opts !== undefined &&
          ts.isObjectLiteralExpression(opts)
        ) {
          for (const p of opts.properties) {
            if (
              ts.isPropertyAssignment(p) &&
              p.name.getText(sf) === 'peerAction' &&
              ts.isStringLiteral(p.initializer)
            ) {
              const key = `${code.text} ${p.initializer.text}`
              pairs.set(key, [...(pairs.get(key) ?? []), file])
            }
          }
        }
      }
      ts.forEachChild(n, visit)
    }
    visit(sf)
  }
  return pairs
}

describe('docs/ERRORS.md: what each code does to the peer', () => {
  it('lists every (code, peerAction) pair raised in src/, with codes that exist and effects that match the action', async () => {
    const rows = await documentedRows()
    assert.ok(rows.length >= 10, `only ${rows.length} rows parsed`)
    const documented = new Set(rows.map((r) => `${r.code} ${r.action}`))
    assert.equal(documented.size, rows.length, 'a (code, peerAction) pair is listed twice')
    for (const r of rows) {
      assert.ok(r.code in HTTP_STATUS, `${r.code} is not an error code`)
      const expected = { ignore: 'nothing', reject: 'penalized', ban: 'banned' }[r.action]
      assert.equal(r.effect, expected, `${r.code} ${r.action}: the docs say "${r.effect}"`)
    }
    const pairs = await literalPairsInSource()
    assert.ok(pairs.has('CID_MISMATCH ban'), 'the source scan found no CID_MISMATCH ban')
    for (const [pair, files] of pairs) {
      assert.ok(documented.has(pair), `${pair} (raised in ${files.join(', ')}) is not in docs/ERRORS.md`)
    }
  })

  it('each documented row does to the peer what the docs say', async () => {
    for (const row of await documentedRows()) {
      const h = harness()
      const peer = `peer-${row.code}`
      const err = new NodusError(row.code as ErrorCode, 'fault', { peerAction: row.action })
      const effect = h.pa.report(peer, err)
      const what = `${row.code} ${row.action}`
      if (row.effect === 'nothing') {
        assert.equal(effect, 'ignore', what)
        assert.deepEqual(h.interactions, [], what)
        assert.deepEqual(h.samples, [], what)
        assert.deepEqual(h.disconnects, [], what)
        assert.equal(h.pa.isBanned(peer), false, what)
        assert.deepEqual(h.actions, ['ignore'], what)
        continue
      }
      // Penalized in both other cases: one bad interaction and one failed sample.
      assert.deepEqual(h.interactions, [{ to: peer, kind: 'shard-bad' }], what)
      assert.deepEqual(h.samples, [{ peer, sample: { ok: false } }], what)
      if (row.effect === 'penalized') {
        assert.equal(effect, 'penalize', what)
        assert.equal(h.pa.isBanned(peer), false, what)
        assert.deepEqual(h.disconnects, [], what)
        // ... and disconnected at the rejectsToDisconnect-th within the window.
        h.clock.ms += OPTIONS.rejectWindowMs / 4
        assert.equal(h.pa.report(peer, err), 'penalize', what)
        h.clock.ms += OPTIONS.rejectWindowMs / 4
        assert.equal(h.pa.report(peer, err), 'disconnect', what)
        assert.deepEqual(h.disconnects, [peer], what)
        assert.equal(h.pa.isBanned(peer), false, what)
        assert.deepEqual(h.actions, ['penalize', 'penalize', 'disconnect'], what)
      } else {
        assert.equal(effect, 'ban', what)
        assert.deepEqual(h.disconnects, [peer], what)
        assert.equal(h.pa.isBanned(peer), true, what)
        assert.deepEqual(h.pa.banOf(peer), {
          peer,
          atMs: h.clock.ms,
          untilMs: h.clock.ms + OPTIONS.banMs,
          code: row.code,
        })
        h.clock.ms += OPTIONS.banMs - 1
        assert.equal(h.pa.isBanned(peer), true, what)
        h.clock.ms += 1
        assert.equal(h.pa.isBanned(peer), false, `${what}: the ban lasts banMs`)
        assert.deepEqual(h.actions, ['ban'], what)
      }
    }
  })
})

describe('PeerActions', () => {
  it('does nothing for errors that name no peer action, nor to itself', () => {
    const h = harness()
    assert.equal(h.pa.report('p', new NodusError('SHARD_MISSING', 'gone')), 'none')
    assert.equal(h.pa.report('p', new Error('plain')), 'none')
    assert.equal(h.pa.report(SELF, new NodusError('CID_MISMATCH', 'x', { peerAction: 'ban' })), 'none')
    h.pa.ban(SELF, 'CID_MISMATCH')
    assert.equal(h.pa.isBanned(SELF), false)
    assert.deepEqual([h.interactions, h.samples, h.disconnects, h.actions], [[], [], [], []])
  })

  it('counts rejects in a sliding window: spread out they never disconnect', () => {
    const h = harness()
    const err = new NodusError('PROTOCOL_ERROR', 'bad', { peerAction: 'reject' })
    for (let i = 0; i < 20; i++) {
      // Two rejects per window: never three within rejectWindowMs.
      assert.equal(h.pa.report('p', err), 'penalize')
      h.clock.ms += OPTIONS.rejectWindowMs / 2 + 1
    }
    assert.deepEqual(h.disconnects, [])
    assert.equal(h.interactions.length, 20)
  })

  it('starts the count over after a disconnect', () => {
    const h = harness()
    const err = new NodusError('PROTOCOL_ERROR', 'bad', { peerAction: 'reject' })
    const effects = Array.from({ length: 7 }, () => h.pa.report('p', err))
    assert.deepEqual(effects, [
      'penalize',
      'penalize',
      'disconnect',
      'penalize',
      'penalize',
      'disconnect',
      'penalize',
    ])
    assert.deepEqual(h.disconnects, ['p', 'p'])
  })

  it('passes the interaction kind the caller names (failed audits, reports)', () => {
    const h = harness()
    h.pa.apply('p', 'reject', { code: 'AUDIT_FAILED', kind: 'audit-failed' })
    h.pa.report(
      'q',
      new NodusError('TRUST_VECTOR_INVALID', 'x', { peerAction: 'reject' }),
      'report-inconsistent',
    )
    assert.deepEqual(h.interactions, [
      { to: 'p', kind: 'audit-failed' },
      { to: 'q', kind: 'report-inconsistent' },
    ])
  })

  it('keeps reject windows for at most maxTrackedPeers peers', () => {
    const h = harness({ maxTrackedPeers: 2 })
    const err = new NodusError('PROTOCOL_ERROR', 'bad', { peerAction: 'reject' })
    h.pa.report('a', err)
    h.pa.report('a', err)
    h.pa.report('b', err)
    h.pa.report('c', err) // forgets a, the least recently rejected
    assert.equal(h.pa.report('a', err), 'penalize', 'a was forgotten: its count started over')
    assert.equal(h.pa.report('c', err), 'penalize')
    assert.equal(h.pa.report('c', err), 'disconnect')
  })

  it('renews a ban in force, and drops expired bans from the store', async () => {
    const h = harness()
    h.pa.ban('p', 'CID_MISMATCH')
    const first = h.pa.banOf('p') as BanRecord
    h.clock.ms += OPTIONS.banMs / 2
    h.pa.ban('p', 'SIGNATURE_INVALID')
    const renewed = h.pa.banOf('p') as BanRecord
    assert.equal(renewed.untilMs, first.untilMs + OPTIONS.banMs / 2)
    assert.equal(renewed.code, 'SIGNATURE_INVALID')
    await h.pa.flush()
    assert.deepEqual(h.bans.records.get('p'), renewed)
    h.clock.ms = renewed.untilMs
    assert.equal(h.pa.bannedCount, 0)
    assert.deepEqual(h.pa.bans(), [])
    await h.pa.flush()
    assert.equal(h.bans.records.size, 0, 'the expired ban is still stored')
  })

  it('keeps at most maxBans bans, lifting the oldest first', async () => {
    const h = harness({ maxBans: 3 })
    for (const p of ['a', 'b', 'c', 'd']) {
      h.pa.ban(p, 'CID_MISMATCH')
      h.clock.ms += 1
    }
    assert.deepEqual(
      h.pa.bans().map((b) => b.peer),
      ['b', 'c', 'd'],
    )
    assert.equal(h.pa.isBanned('a'), false)
    // Renewing b makes it the newest: c goes next.
    h.pa.ban('b', 'CID_MISMATCH')
    h.pa.ban('e', 'CID_MISMATCH')
    assert.deepEqual(
      h.pa.bans().map((b) => b.peer),
      ['d', 'b', 'e'],
    )
    await h.pa.flush()
    assert.deepEqual([...h.bans.records.keys()].sort(), ['b', 'd', 'e'])
  })

  it('unban lifts a ban', async () => {
    const h = harness()
    h.pa.ban('p', 'CID_MISMATCH')
    assert.equal(h.pa.unban('p'), true)
    assert.equal(h.pa.unban('p'), false)
    assert.equal(h.pa.isBanned('p'), false)
    await h.pa.flush()
    assert.equal(h.bans.records.size, 0)
  })

  it('loads bans at start: expired ones dropped, the newest maxBans kept', async () => {
    const store = new MemoryBanStore()
    const h0 = harness()
    const now = h0.clock.ms
    for (const [peer, atMs, untilMs] of [
      ['expired', now - 100, now],
      ['old', now - 50, now + 1000],
      ['mid', now - 40, now + 1000],
      ['new', now - 30, now + 1000],
    ] as const) {
      await store.put({ peer, atMs, untilMs, code: 'CID_MISMATCH' })
    }
    const h = harness({ maxBans: 2 }, store)
    await h.pa.start()
    assert.deepEqual(
      h.pa.bans().map((b) => b.peer),
      ['mid', 'new'],
    )
    await h.pa.flush()
    assert.deepEqual([...store.records.keys()].sort(), ['mid', 'new'])
    await h.pa.stop()
  })

  it('persists bans in LMDB across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nodus-bans-'))
    try {
      const clock = clockAt()
      const pa1 = new PeerActions(
        {
          self: SELF,
          clock,
          trust: { recordInteraction: () => {} },
          perf: { record: () => {} },
          disconnect: async () => {},
          bans: new LmdbBanStore(join(dir, 'bans')),
          logger: silentLogger(),
        },
        OPTIONS,
      )
      await pa1.start()
      pa1.report('short', new NodusError('CID_MISMATCH', 'x', { peerAction: 'ban' }))
      clock.ms += OPTIONS.banMs / 2
      pa1.report('long', new NodusError('SIGNATURE_INVALID', 'x', { peerAction: 'ban' }))
      await pa1.stop()

      // Restart after the first ban ended: only the second comes back.
      clock.ms += OPTIONS.banMs / 2
      const store2 = new LmdbBanStore(join(dir, 'bans'))
      const pa2 = new PeerActions(
        {
          self: SELF,
          clock,
          trust: { recordInteraction: () => {} },
          perf: { record: () => {} },
          disconnect: async () => {},
          bans: store2,
          logger: silentLogger(),
        },
        OPTIONS,
      )
      await pa2.start()
      assert.equal(pa2.isBanned('short'), false)
      assert.equal(pa2.isBanned('long'), true)
      assert.equal(pa2.banOf('long')?.code, 'SIGNATURE_INVALID')
      await pa2.flush()
      assert.deepEqual(
        (await store2.load()).map((r) => r.peer),
        ['long'],
      )
      await pa2.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('refuses options that are not positive integers', () => {
    for (const bad of [
      { banMs: 0 },
      { rejectsToDisconnect: 1.5 },
      { maxBans: -1 },
      { rejectWindowMs: Number.NaN },
    ]) {
      assert.throws(
        () => harness(bad),
        (err: unknown) => err instanceof NodusError && err.code === 'INVALID_ARGUMENT',
      )
    }
  })
})
