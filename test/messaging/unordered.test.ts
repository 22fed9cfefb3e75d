/**
 * `subscribe(topic, { unordered: true })` (src/messaging/area.ts): a batch that arrives ahead of a
 * missing earlier one reaches an unordered subscription at once, while an ordered subscription of the
 * same topic waits for the gap (up to `messaging.reorderWindowMs`). Real gossipsub on loopback; the
 * sender publishes hand-made batches with a gap in their seqs.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { encodeBatch, GOSSIP_TOPIC_PREFIX, type PubsubMessage } from '../../src/messaging/index.ts'
import { waitFor } from '../utils/wait.ts'
import { connectAll, startPubsubPeer, waitForSubscribers } from './peers.ts'

test('an unordered subscription gets a batch ahead of a gap at once; an ordered one waits for the gap', async (t) => {
  const a = await startPubsubPeer({ reorderWindowMs: 60_000 })
  const b = await startPubsubPeer()
  t.after(async () => {
    await a.stop()
    await b.stop()
  })
  await connectAll([a, b])
  const ordered = a.messaging.subscribe('dag')
  const free = a.messaging.subscribe('dag', { unordered: true })
  // b also joins the topic so that gossipsub meshes it with a.
  const bSub = b.messaging.subscribe('dag')
  await waitForSubscribers([b], [a], 'dag')
  const got = { ordered: [] as PubsubMessage[], free: [] as PubsubMessage[] }
  const drain = async (sub: AsyncIterable<PubsubMessage>, into: PubsubMessage[]): Promise<void> => {
    for await (const m of sub) into.push(m)
  }
  void drain(ordered, got.ordered)
  void drain(free, got.free)

  const session = Date.now() * 1000
  const now = Date.now()
  const raw = (firstSeq: number, text: string): Uint8Array =>
    encodeBatch({
      sessionStart: session,
      firstSeq,
      timeMs: now,
      entries: [{ data: new TextEncoder().encode(text), publishedAtMs: now }],
    })
  const publish = (bytes: Uint8Array) => b.libp2p.services.pubsub?.publish(`${GOSSIP_TOPIC_PREFIX}dag`, bytes)
  await publish(raw(session, 'first'))
  await waitFor(() => got.ordered.length === 1 && got.free.length === 1, { timeoutMs: 10_000, what: 'first' })
  // seq session+1 is never sent: session+2 is ahead of a gap.
  await publish(raw(session + 2, 'third'))
  await waitFor(() => got.free.length === 2, { timeoutMs: 10_000, what: 'the unordered delivery' })
  assert.equal(new TextDecoder().decode(got.free[1]?.data), 'third')
  assert.equal(got.ordered.length, 1, 'the ordered subscription holds it for the gap')
  await publish(raw(session + 1, 'second'))
  await waitFor(() => got.ordered.length === 3, { timeoutMs: 10_000, what: 'the gap filled' })
  assert.deepEqual(
    got.ordered.map((m) => new TextDecoder().decode(m.data)),
    ['first', 'second', 'third'],
  )
  await waitFor(() => got.free.length === 3, { timeoutMs: 10_000, what: 'the late one, unordered' })
  assert.deepEqual(
    got.free.map((m) => new TextDecoder().decode(m.data)),
    ['first', 'third', 'second'],
  )
  ordered.close()
  free.close()
  bSub.close()
})
