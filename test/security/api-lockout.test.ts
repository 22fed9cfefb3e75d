/**
 * Finding: 700 unauthenticated `text/plain` POSTs (what any web page can send to 127.0.0.1) used up the
 * rate-limit bucket the token holder shared with them, and the owner's own requests got 429 for a
 * minute. Now clients without the token have buckets of their own (per address), counted apart from
 * the token holder's: the flood is refused (401, then 429) and the owner's requests are still served.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { type ApiNode, startApiNode } from '../utils/api-node.ts'

const FLOOD = 700
const UNAUTHENTICATED_PER_MINUTE = 120

let n: ApiNode
before(async () => {
  // The owner's bucket is the default (600 a minute): smaller than the flood, as in the finding.
  n = await startApiNode({ api: { unauthenticatedPerMinute: UNAUTHENTICATED_PER_MINUTE } })
})
after(() => n.stop())

/** What a web page's `fetch(url, { method: 'POST', body })` sends: a CORS-simple text/plain POST. */
async function hostilePost(api: string): Promise<number> {
  const r = await fetch(`${api}/files?name=x`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'x'.repeat(100),
  })
  const body = (await r.json()) as { code: string }
  assert.equal(body.code, r.status === 401 ? 'UNAUTHORIZED' : 'RATE_LIMITED')
  return r.status
}

test('700 unauthenticated POSTs leave the token holder served (200, not 429)', async () => {
  const statuses = new Map<number, number>()
  for (let sent = 0; sent < FLOOD; sent += 50) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => hostilePost(n.api)))
    for (const s of batch) statuses.set(s, (statuses.get(s) ?? 0) + 1)
  }
  // Every hostile request was refused, and past its own bucket it was rate-limited.
  assert.deepEqual([...statuses.keys()].sort(), [401, 429])
  assert.ok((statuses.get(429) ?? 0) > 0, 'the unauthenticated bucket ran out')
  assert.ok((statuses.get(401) ?? 0) <= UNAUTHENTICATED_PER_MINUTE)

  // The owner, from the same address in the same minute: upload, read back, unpin.
  const data = randomBytes(100_000)
  const put = await fetch(`${n.api}/files?name=owner.bin`, {
    method: 'POST',
    headers: { authorization: `Bearer ${n.token}`, 'content-type': 'application/octet-stream' },
    body: data,
  })
  assert.equal(put.status, 200, await put.clone().text())
  const { cid } = (await put.json()) as { cid: string }
  const got = await fetch(`${n.api}/files/${cid}`)
  assert.equal(got.status, 200)
  assert.deepEqual(Buffer.from(await got.arrayBuffer()), data)
  for (let i = 0; i < 5; i++) {
    const pin = await fetch(`${n.api}/files/${cid}/pin`, {
      method: 'POST',
      headers: { authorization: `Bearer ${n.token}`, 'content-type': 'application/json' },
      body: '{}',
    })
    assert.equal(pin.status, 200, await pin.clone().text())
  }
  const del = await fetch(`${n.api}/files/${cid}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${n.token}` },
  })
  assert.equal(del.status, 200)

  // The strangers' bucket is still empty: the owner's requests did not refill it.
  assert.equal(await hostilePost(n.api), 429)
})
