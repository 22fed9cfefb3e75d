import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Popularity } from '../../src/storage/keeper/popularity.ts'

const H = 3600 * 1000

describe('Popularity (sliding-window read counts)', () => {
  it('counts reads inside the window and forgets them bucket by bucket', () => {
    const p = new Popularity({ windowMs: 24 * H, buckets: 24 })
    const t0 = 1_000 * H
    for (let i = 0; i < 5; i++) p.record('a', t0)
    p.record('a', t0 + 2 * H)
    p.record('b', t0)
    assert.equal(p.count('a', t0 + 2 * H), 6)
    assert.equal(p.count('b', t0 + 2 * H), 1)
    assert.equal(p.count('missing', t0), 0)
    // 24 buckets later the first 5 reads have left the window; the later one stays 2 more hours.
    assert.equal(p.count('a', t0 + 24 * H), 1)
    assert.equal(p.count('a', t0 + 26 * H), 0)
    // Long silence clears everything at once.
    p.record('b', t0 + 1_000 * H)
    assert.equal(p.count('b', t0 + 1_000 * H), 1)
  })

  it('tracks at most maxEntries keys, dropping the least recently read', () => {
    const p = new Popularity({ maxEntries: 3 })
    p.record('a', 0)
    p.record('b', 0)
    p.record('c', 0)
    p.record('a', 1) // a is now the most recent
    p.record('d', 2) // evicts b
    assert.equal(p.size, 3)
    assert.equal(p.count('b', 2), 0)
    assert.equal(p.count('a', 2), 2)
    assert.equal(p.count('d', 2), 1)
  })
})

it('one requester counts once per bucket: it cannot make a file popular alone', () => {
  const p = new Popularity({ windowMs: 24 * 3600 * 1000, buckets: 24 })
  const t = 1_000_000_000_000
  for (let i = 0; i < 1000; i++) p.record('m', t + i, 'attacker')
  assert.equal(p.count('m', t + 1000), 1)
  p.record('m', t + 2000, 'someone-else')
  assert.equal(p.count('m', t + 2000), 2)
  // A new bucket (an hour later): the attacker counts once more, no more.
  for (let i = 0; i < 1000; i++) p.record('m', t + 3_600_000 + i, 'attacker')
  assert.equal(p.count('m', t + 3_601_000), 3)
})
