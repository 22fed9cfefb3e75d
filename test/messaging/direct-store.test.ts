/**
 * The LMDB stores of direct messages: the mailbox's per-storer and total bounds hold under any
 * sequence of stores, acknowledgements and expiries (a seeded property, checked against a model), the
 * usage is rebuilt on reopen, and the inbox refuses duplicates and beyond its bound.
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
  mailboxMaxMessages: 6,
  mailboxMaxBytes: 600,
  mailboxSenderMessages: 3,
  mailboxSenderBytes: 250,
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
              const all = [...model.values()]
              const overQuota =
                mine.length + 1 > LIMITS.mailboxSenderMessages ||
                mine.reduce((n, e) => n + e.bytes, 0) + o.size > LIMITS.mailboxSenderBytes
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
                assert.ok(!overQuota && !overTotal, 'stored beyond a bound')
                model.set(`${to}/${id}`, { storer, to, id, bytes: o.size, expires: now + o.ttl })
              } catch (err) {
                if (isNodusError(err, 'QUOTA_EXCEEDED')) assert.ok(overQuota)
                else if (isNodusError(err, 'MAILBOX_FULL')) assert.ok(overTotal && !overQuota)
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
          }
          // Reopened, the usage is the same.
          const before = store.mailboxUsage
          await store.close()
          store = new DirectStore(dir, LIMITS)
          store.open()
          assert.deepEqual(store.mailboxUsage, before)
        } finally {
          await store.close()
        }
      }),
      { numRuns: 25 },
    )
  })

  it('the inbox refuses an id it holds and anything beyond its bound (INBOX_FULL), across reopen', async () => {
    const dir = tempDir()
    let store = new DirectStore(dir, LIMITS)
    store.open()
    const m = (i: number) => ({
      id: idOf(i).slice(32),
      from: 'p',
      sentAtMs: i,
      receivedAtMs: i,
      via: 'online' as const,
      body: new Uint8Array([i]),
    })
    assert.equal(await store.addMessage(m(1)), true)
    assert.equal(await store.addMessage(m(1)), false)
    assert.equal(await store.addMessage(m(2)), true)
    await store.close()
    store = new DirectStore(dir, LIMITS)
    store.open()
    assert.equal(store.inboxCount, 2)
    assert.equal(await store.addMessage(m(2)), false)
    assert.equal(await store.addMessage(m(3)), true)
    await assert.rejects(store.addMessage(m(4)), (err: unknown) => isNodusError(err, 'INBOX_FULL'))
    assert.deepEqual(
      store.listMessages({ limit: 10 }).map((x) => x.body[0]),
      [1, 2, 3],
    )
    assert.deepEqual(
      store.listMessages({ after: m(1).id, limit: 1 }).map((x) => x.body[0]),
      [2],
    )
    assert.equal(await store.deleteMessage(m(1).id), true)
    assert.equal(await store.addMessage(m(4)), true)
    await store.close()
  })
})
