/**
 * The LMDB stores of direct messages: the mailbox's per-storer, per-recipient and total bounds hold
 * under any sequence of stores, acknowledgements and expiries (a seeded property, checked against a
 * model), the usage is rebuilt on reopen; the inbox refuses beyond its bound, and its replay window
 * never takes an id twice before it expires, across deletions and reopens, within its bound on disk
 * (a second property), and never remembers a message it refused.
 */
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { DirectStore, type DirectStoreLimits } from '../../src/messaging/index.ts'
import { assertProperty } from '../utils/property.ts'

const dirs: string[] = []
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'nodus-direct-store-'))
  dirs.push(d)
  return d
}
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))))

const LIMITS: DirectStoreLimits = {
  maxInboxMessages: 3,
  replayWindowIds: 1000,
  mailboxMaxMessages: 6,
  mailboxMaxBytes: 600,
  mailboxSenderMessages: 3,
  mailboxSenderBytes: 250,
  mailboxRecipientMessages: 4,
  mailboxRecipientBytes: 300,
}

const idOf = (n: number): string => n.toString(16).padStart(64, '0')

type Op =
  | { kind: 'store'; storer: number; to: number; size: number; ttl: number }
  | { kind: 'ack'; to: number; pick: number }
  | { kind: 'tick'; ms: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('store' as const),
    storer: fc.integer({ min: 0, max: 3 }),
    to: fc.integer({ min: 0, max: 2 }),
    size: fc.integer({ min: 1, max: 120 }),
    ttl: fc.integer({ min: 1, max: 50 }),
  }),
  fc.record({ kind: fc.constant('ack' as const), to: fc.integer({ min: 0, max: 2 }), pick: fc.nat() }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 30 }) }),
)

describe('DirectStore', () => {
  it('keeps every storer within its quota and the mailbox within its totals, as a model does, across reopen', async () => {
    await assertProperty(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const dir = tempDir()
        let store = new DirectStore(dir, LIMITS)
        store.open()
        // The model: what should be kept, by (to, id).
        const model = new Map<
          string,
          { storer: string; to: string; id: string; bytes: number; expires: number }
        >()
        let now = 0
        let next = 0
        try {
          for (const o of ops) {
            if (o.kind === 'tick') {
              now += o.ms
              await store.expireMailbox(now)
              for (const [k, e] of model) if (e.expires <= now) model.delete(k)
            } else if (o.kind === 'store') {
              const storer = `s${o.storer}`
              const to = `t${o.to}`
              const id = idOf(next++)
              const mine = [...model.values()].filter((e) => e.storer === storer)
              const theirs = [...model.values()].filter((e) => e.to === to)
              const all = [...model.values()]
              const overQuota =
                mine.length + 1 > LIMITS.mailboxSenderMessages ||
                mine.reduce((n, e) => n + e.bytes, 0) + o.size > LIMITS.mailboxSenderBytes
              const overRecipient =
                theirs.length + 1 > LIMITS.mailboxRecipientMessages ||
                theirs.reduce((n, e) => n + e.bytes, 0) + o.size > LIMITS.mailboxRecipientBytes
              const overTotal =
                all.length + 1 > LIMITS.mailboxMaxMessages ||
                all.reduce((n, e) => n + e.bytes, 0) + o.size > LIMITS.mailboxMaxBytes
              try {
                await store.putMailbox(to, {
                  id,
                  storer,
                  storedAtMs: now,
                  expiresAtMs: now + o.ttl,
                  msg: new Uint8Array(o.size),
                })
                assert.ok(!overQuota && !overRecipient && !overTotal, 'stored beyond a bound')
                model.set(`${to}/${id}`, { storer, to, id, bytes: o.size, expires: now + o.ttl })
              } catch (err) {
                if (isNodusError(err, 'QUOTA_EXCEEDED')) assert.ok(overQuota)
                else if (isNodusError(err, 'MAILBOX_RECIPIENT_FULL')) assert.ok(overRecipient && !overQuota)
                else if (isNodusError(err, 'MAILBOX_FULL'))
                  assert.ok(overTotal && !overQuota && !overRecipient)
                else throw err
              }
            } else {
              const to = `t${o.to}`
              const listed = store.listMailbox(to, { maxBytes: 10_000, nowMs: now }).entries
              const mine = [...model.values()]
                .filter((e) => e.to === to)
                .sort((a, b) => (a.id < b.id ? -1 : 1))
              assert.deepEqual(
                listed.map((e) => e.id),
                mine.map((e) => e.id),
              )
              const gone = mine[o.pick % Math.max(1, mine.length)]
              if (gone !== undefined) {
                assert.equal(await store.removeMailbox(to, [gone.id]), 1)
                model.delete(`${to}/${gone.id}`)
              }
            }
            const usage = store.mailboxUsage
            assert.equal(usage.count, model.size)
            assert.ok(usage.count <= LIMITS.mailboxMaxMessages && usage.bytes <= LIMITS.mailboxMaxBytes)
            for (let s = 0; s < 4; s++) {
              const u = store.storerUsage(`s${s}`)
              assert.ok(u.count <= LIMITS.mailboxSenderMessages && u.bytes <= LIMITS.mailboxSenderBytes)
            }
            for (let t = 0; t < 3; t++) {
              const u = store.recipientUsage(`t${t}`)
              const held = [...model.values()].filter((e) => e.to === `t${t}`)
              assert.equal(u.count, held.length)
              assert.ok(u.count <= LIMITS.mailboxRecipientMessages && u.bytes <= LIMITS.mailboxRecipientBytes)
            }
          }
          // Reopened, the usage is the same.
          const before = store.mailboxUsage
          const recipients = [0, 1, 2].map((t) => store.recipientUsage(`t${t}`))
          await store.close()
          store = new DirectStore(dir, LIMITS)
          store.open()
          assert.deepEqual(store.mailboxUsage, before)
          assert.deepEqual(
            [0, 1, 2].map((t) => store.recipientUsage(`t${t}`)),
            recipients,
          )
        } finally {
          await store.close()
        }
      }),
      { numRuns: 25 },
    )
  })

  it('many storers flooding one recipient take at most its share: another recipient’s messages are still stored', async () => {
    const store = new DirectStore(tempDir(), {
      ...LIMITS,
      mailboxSenderMessages: 100,
      mailboxSenderBytes: 10_000,
    })
    store.open()
    try {
      const entry = (storer: string, n: number) => ({
        id: idOf(n),
        storer,
        storedAtMs: 0,
        expiresAtMs: 1000,
        msg: new Uint8Array(10),
      })
      const refused: string[] = []
      let n = 0
      for (let s = 0; s < 5; s++)
        for (let i = 0; i < 3; i++)
          await store.putMailbox('flooded', entry(`s${s}`, n++)).catch((err: unknown) => {
            assert.ok(isNodusError(err), String(err))
            refused.push(err.code)
          })
      assert.deepEqual(store.recipientUsage('flooded'), { count: LIMITS.mailboxRecipientMessages, bytes: 40 })
      assert.equal(refused.length, 15 - LIMITS.mailboxRecipientMessages)
      assert.ok(refused.every((c) => c === 'MAILBOX_RECIPIENT_FULL'))
      // The rest of the mailbox (6 in all) is the others'.
      assert.equal(await store.putMailbox('other', entry('s0', n++)), 'stored')
      assert.equal(await store.putMailbox('other', entry('s9', n++)), 'stored')
      assert.deepEqual(store.recipientUsage('other'), { count: 2, bytes: 20 })
      await assert.rejects(store.putMailbox('third', entry('s9', n++)), (err: unknown) =>
        isNodusError(err, 'MAILBOX_FULL'),
      )
      // Acknowledged, the flood makes room for the recipient again.
      assert.equal(await store.removeMailbox('flooded', [idOf(0)]), 1)
      assert.equal(await store.putMailbox('flooded', entry('s0', n++)), 'stored')
    } finally {
      await store.close()
    }
  })

  it('the same sealed bytes stored twice at once are one entry, counted once', async () => {
    const store = new DirectStore(tempDir(), LIMITS)
    store.open()
    try {
      const entry = (storer: string) => ({
        id: idOf(7),
        storer,
        storedAtMs: 0,
        expiresAtMs: 1000,
        msg: new Uint8Array(10),
      })
      const puts = await Promise.all([store.putMailbox('t', entry('s1')), store.putMailbox('t', entry('s2'))])
      assert.deepEqual(puts.sort(), ['duplicate', 'stored'])
      assert.deepEqual(store.mailboxUsage, { count: 1, bytes: 10 })
      assert.equal(await store.removeMailbox('t', [idOf(7)]), 1)
      assert.deepEqual(store.mailboxUsage, { count: 0, bytes: 0 })
      assert.deepEqual(store.recipientUsage('t'), { count: 0, bytes: 0 })
    } finally {
      await store.close()
    }
  })

  it('the inbox takes a message once, after it was deleted and across reopen too; beyond its bound INBOX_FULL, not remembered', async () => {
    const dir = tempDir()
    let store = new DirectStore(dir, LIMITS)
    store.open()
    const reopen = async (): Promise<void> => {
      await store.close()
      store = new DirectStore(dir, LIMITS)
      store.open()
    }
    const EXP = 1_000_000
    const m = (i: number) => ({
      id: idOf(i).slice(32),
      from: 'p',
      sentAtMs: i,
      receivedAtMs: i,
      via: 'online' as const,
      body: new Uint8Array([i]),
    })
    const add = (i: number) => store.addMessage(m(i), EXP, 0)
    try {
      assert.equal(await add(1), 'added')
      assert.equal(await add(1), 'seen')
      assert.equal(await add(2), 'added')
      await reopen()
      assert.equal(store.inboxCount, 2)
      assert.equal(await add(2), 'seen')
      assert.equal(await add(3), 'added')
      await assert.rejects(add(4), (err: unknown) => isNodusError(err, 'INBOX_FULL'))
      assert.deepEqual(
        store.listMessages({ limit: 10 }).map((x) => x.body[0]),
        [1, 2, 3],
      )
      assert.deepEqual(
        store.listMessages({ after: m(1).id, limit: 1 }).map((x) => x.body[0]),
        [2],
      )
      // Deleted from the inbox, still remembered: now and after a reopen.
      assert.equal(await store.deleteMessage(m(1).id), true)
      assert.equal(await add(1), 'seen')
      // Refused when the inbox was full, so not remembered: taken now there is room.
      assert.equal(await add(4), 'added')
      await reopen()
      assert.equal(await add(1), 'seen')
      assert.equal(await add(4), 'seen')
      assert.deepEqual(store.replayState(), { ids: 4, storedIds: 4, floorMs: Number.NEGATIVE_INFINITY })
      // Once they expire (a message that old no longer opens), the ids are forgotten, on disk too.
      assert.equal(await store.pruneReplay(EXP - 1), 0)
      assert.equal(await store.pruneReplay(EXP), 4)
      assert.deepEqual(store.replayState(), { ids: 0, storedIds: 0, floorMs: Number.NEGATIVE_INFINITY })
      await reopen()
      assert.equal(store.replayState().storedIds, 0)
      assert.equal(store.inboxCount, 3)
    } finally {
      await store.close()
    }
  })

  it('property: the inbox never takes an id twice before it expires (deletes, batches, concurrent copies, reopens), within replayWindowIds on disk', async () => {
    const limits = { ...LIMITS, maxInboxMessages: 4, replayWindowIds: 3 }
    type ROp =
      | { kind: 'add'; ids: number[]; ttl: number; together: boolean }
      | { kind: 'del'; pick: number }
      | { kind: 'tick'; ms: number }
      | { kind: 'reopen' }
    const rop: fc.Arbitrary<ROp> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant('add' as const),
          ids: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 3 }),
          ttl: fc.integer({ min: 1, max: 100 }),
          together: fc.boolean(),
        }),
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('del' as const), pick: fc.nat() }) },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 60 }) }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
    )
    await assertProperty(
      fc.asyncProperty(fc.array(rop, { minLength: 1, maxLength: 40 }), async (ops) => {
        const dir = tempDir()
        let store = new DirectStore(dir, limits)
        store.open()
        /** A message's expiry is fixed (its sentAt): set by the first attempt. */
        const expiry = new Map<number, number>()
        /** Ids taken, and when they expire. */
        const taken = new Map<number, number>()
        const inbox = new Set<number>()
        let now = 0
        let seq = 0
        const item = (i: number) => ({
          m: {
            id: idOf(i).slice(32),
            from: 'p',
            sentAtMs: 0,
            receivedAtMs: seq++,
            via: 'mailbox' as const,
            body: new Uint8Array([i]),
          },
          expiresAtMs: expiry.get(i) as number,
        })
        try {
          for (const o of ops) {
            if (o.kind === 'add') {
              for (const i of o.ids) if (!expiry.has(i)) expiry.set(i, now + o.ttl)
              // A message past its expiry no longer opens: it never reaches the store.
              const ids = o.ids.filter((i) => (expiry.get(i) as number) > now)
              const results = o.together
                ? await store.addMessages(ids.map(item), now)
                : await Promise.all(
                    ids.map((i) =>
                      store.addMessage(item(i).m, item(i).expiresAtMs, now).catch((err: unknown) => {
                        if (isNodusError(err, 'INBOX_FULL')) return 'full' as const
                        throw err
                      }),
                    ),
                  )
              results.forEach((r, k) => {
                const i = ids[k] as number
                const live = taken.has(i) && (taken.get(i) as number) > now
                if (r === 'added') {
                  assert.ok(!live, `id ${i} taken twice before it expired`)
                  taken.set(i, expiry.get(i) as number)
                  inbox.add(i)
                } else if (r === 'seen') assert.ok(live, `id ${i} seen but not taken or expired`)
                else if (r === 'below-floor')
                  assert.ok(
                    (expiry.get(i) as number) <= store.replayState().floorMs,
                    `id ${i} below-floor above it`,
                  )
                else assert.equal(inbox.size, limits.maxInboxMessages, 'full below the bound')
              })
            } else if (o.kind === 'del') {
              const held = [...inbox]
              const gone = held[o.pick % Math.max(1, held.length)]
              if (gone !== undefined) {
                assert.equal(await store.deleteMessage(idOf(gone).slice(32)), true)
                inbox.delete(gone)
              }
            } else if (o.kind === 'tick') {
              now += o.ms
              await store.pruneReplay(now)
              const st = store.replayState()
              assert.equal(st.storedIds, st.ids, 'on disk: the ids held in memory')
            } else {
              const before = store.replayState()
              await store.close()
              store = new DirectStore(dir, limits)
              store.open()
              assert.ok(store.replayState().floorMs >= before.floorMs, 'the floor came back lower')
            }
            assert.equal(store.inboxCount, inbox.size)
            assert.ok(store.replayState().ids <= limits.replayWindowIds)
          }
        } finally {
          await store.close()
        }
      }),
      { numRuns: 40 },
    )
  })
})
