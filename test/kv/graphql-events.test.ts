/**
 * The subscription hub: an applied op reaches exactly the subscribers of its key, its database and
 * the prefixes of its key (other databases' and keys' subscribers are never looked at); bounds on
 * subscriptions refuse with QUEUE_FULL; a subscriber that falls behind ends with QUEUE_FULL; the hub
 * listens to the engine only while someone subscribes.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Registry } from 'prom-client'
import { isNodusError } from '../../src/common/errors.ts'
import type { AppliedEvent } from '../../src/kv/engine.ts'
import { type KvEvent, KvEventHub } from '../../src/kv/graphql-events.ts'
import { createKvGraphqlMetrics } from '../../src/kv/metrics.ts'
import { makeOp } from './state-ops.ts'

function setup(options: Partial<{ maxSubscriptions: number; maxPerOwner: number; queueMax: number }> = {}) {
  const listeners = new Set<(e: AppliedEvent) => void>()
  const metrics = createKvGraphqlMetrics(new Registry())
  const hub = new KvEventHub(
    {
      onApplied: (l) => {
        listeners.add(l)
        return () => listeners.delete(l)
      },
      metrics,
    },
    { maxSubscriptions: 100, maxPerOwner: 10, queueMax: 100, ...options },
  )
  let at = 1
  const apply = (db: string, key: string) => {
    const op = makeOp('string', 'set', key, ['v'], { at: at++, db })
    for (const l of listeners) l({ op, source: 'local', changed: true })
  }
  return { hub, listeners, metrics, apply }
}

/** What the iterator holds right now (each next() that resolves at once). */
async function drain(it: AsyncIterator<KvEvent>): Promise<string[]> {
  const out: string[] = []
  for (;;) {
    const next = await Promise.race([it.next(), Promise.resolve('empty' as const)])
    if (next === 'empty' || next.done === true) return out
    out.push(`${next.value.db}/${next.value.key}`)
  }
}

test('events reach the subscribers of their key, database and key prefixes only', async () => {
  const { hub, apply, metrics } = setup()
  const key = hub.subscribe({ kind: 'key', db: 'a', key: 'k1' })
  const otherKey = hub.subscribe({ kind: 'key', db: 'a', key: 'k2' })
  const db = hub.subscribe({ kind: 'db', db: 'a' })
  const prefix = hub.subscribe({ kind: 'prefix', db: 'a', prefix: 'k' })
  const all = hub.subscribe({ kind: 'prefix', db: 'a', prefix: '' })
  const otherDb = hub.subscribe({ kind: 'db', db: 'b' })
  apply('a', 'k1')
  apply('a', 'x')
  apply('b', 'k1')
  apply('c', 'k1')
  assert.deepEqual(await drain(key), ['a/k1'])
  assert.deepEqual(await drain(otherKey), [])
  assert.deepEqual(await drain(db), ['a/k1', 'a/x'])
  assert.deepEqual(await drain(prefix), ['a/k1'])
  assert.deepEqual(await drain(all), ['a/k1', 'a/x'])
  assert.deepEqual(await drain(otherDb), ['b/k1'])
  const events = await metrics.kvGraphqlEvents.get()
  assert.equal(events.values[0]?.value, 7)
})

test('prefix routing is the same whether it scans prefixes or looks up each prefix of the key', async () => {
  const { hub, apply } = setup()
  // More prefixes than the key has characters: looked up per prefix length.
  const subs = ['', 'u', 'us', 'use', 'user', 'user:', 'user:1', 'zz', 'uz'].map((p) => ({
    p,
    it: hub.subscribe({ kind: 'prefix', db: 'a', prefix: p }),
  }))
  apply('a', 'user')
  for (const { p, it } of subs)
    assert.deepEqual(await drain(it), 'user'.startsWith(p) ? ['a/user'] : [], `prefix ${JSON.stringify(p)}`)
})

test('a waiting reader is woken; return() ends it and unsubscribes; the engine is heard only while needed', async () => {
  const { hub, apply, listeners, metrics } = setup()
  assert.equal(listeners.size, 0)
  const it = hub.subscribe({ kind: 'key', db: 'a', key: 'k' })
  assert.equal(listeners.size, 1)
  const pending = it.next()
  apply('a', 'k')
  const first = await pending
  assert.equal(first.done, false)
  assert.equal((first.value as KvEvent).key, 'k')
  assert.equal((first.value as KvEvent).source, 'local')
  assert.match((first.value as KvEvent).id, /^[0-9a-f]{64}$/)
  const waiting = it.next()
  await it.return?.()
  assert.deepEqual(await waiting, { value: undefined, done: true })
  assert.equal(hub.size, 0)
  assert.equal(listeners.size, 0, 'no subscriber: not listening')
  assert.equal((await metrics.kvGraphqlSubscriptions.get()).values[0]?.value, 0)
})

test('bounds: too many subscriptions (per node, per connection) are refused with QUEUE_FULL', () => {
  const { hub } = setup({ maxSubscriptions: 3, maxPerOwner: 2 })
  const conn = {}
  hub.subscribe({ kind: 'db', db: 'a' }, conn)
  hub.subscribe({ kind: 'db', db: 'a' }, conn)
  assert.throws(
    () => hub.subscribe({ kind: 'db', db: 'a' }, conn),
    (e) => isNodusError(e, 'QUEUE_FULL') && /per ?connection|this connection/i.test(e.message),
  )
  hub.subscribe({ kind: 'db', db: 'a' }, {})
  assert.throws(
    () => hub.subscribe({ kind: 'db', db: 'a' }, {}),
    (e) => isNodusError(e, 'QUEUE_FULL') && /kv\.graphqlMaxSubscriptions/.test(e.message),
  )
})

test('a subscriber that falls queueMax events behind ends with QUEUE_FULL; the others go on', async () => {
  const { hub, apply, metrics } = setup({ queueMax: 3 })
  const slow = hub.subscribe({ kind: 'db', db: 'a' })
  const fine = hub.subscribe({ kind: 'key', db: 'a', key: 'k9' })
  for (let i = 0; i < 10; i++) apply('a', `k${i}`)
  await assert.rejects(slow.next(), (e) => isNodusError(e, 'QUEUE_FULL'))
  assert.deepEqual(await slow.next(), { value: undefined, done: true })
  assert.deepEqual(await drain(fine), ['a/k9'])
  assert.equal(hub.size, 1)
  const ended = await metrics.kvGraphqlSubscriptionsEnded.get()
  assert.equal(ended.values.find((v) => v.labels.reason === 'overflow')?.value, 1)
})

test('close() ends every subscriber', async () => {
  const { hub, listeners } = setup()
  const a = hub.subscribe({ kind: 'db', db: 'a' })
  const b = hub.subscribe({ kind: 'prefix', db: 'b', prefix: 'x' })
  const waiting = a.next()
  hub.close()
  assert.deepEqual(await waiting, { value: undefined, done: true })
  assert.deepEqual(await b.next(), { value: undefined, done: true })
  assert.equal(hub.size, 0)
  assert.equal(listeners.size, 0)
})
