/**
 * The short chaos run: 12 node processes under put/get load, SIGKILLs, restarts and one wiped data
 * directory; every acknowledged file must read back and repair must heal every segment. Then the
 * same with a hostile peer attacking every node for the whole run (src/cli/hostile.ts).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runCli } from '../utils/run-cli.ts'

test('chaos --quick: files survive kills, restarts and a wiped disk; repair heals every segment', {
  timeout: 400_000,
}, async () => {
  const r = await runCli(['chaos', '--quick', '--seed', '20261122'], 380_000)
  const result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, number | boolean>
  assert.equal(r.code, 0, `chaos failed: ${r.stdout}\n${r.stderr.slice(-3000)}`)
  assert.equal(result.ok, true)
  assert.ok((result.files as number) > 0)
  assert.ok((result.kills as number) >= 1)
  assert.equal(result.wipes, 1)
  assert.equal(result.unreadable, 0)
  assert.equal(result.unhealthySegments, 0)
  assert.ok((result.repairs as number) > 0, 'no repair ran although a data directory was wiped')
})

test('chaos --quick --hostile: a hostile peer attacks every node for the whole run; no attack succeeds, honest load is served', {
  timeout: 400_000,
}, async () => {
  const r = await runCli(['chaos', '--quick', '--hostile', '--seed', '20261122'], 380_000)
  const result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
    ok?: boolean
    files?: number
    unreadable?: number
    unhealthySegments?: number
    hostile?: {
      attacks: Record<string, { attempts: number; refused: number; allowed: number; unexpected: number }>
      unexpectedAccepted: number
      honestRefusedLongestSeconds: number
      honestRefusedBoundSeconds: number
    }
  }
  assert.equal(r.code, 0, `chaos --hostile failed: ${r.stdout}\n${r.stderr.slice(-3000)}`)
  assert.equal(result.ok, true)
  assert.ok((result.files ?? 0) > 0)
  assert.equal(result.unreadable, 0)
  assert.equal(result.unhealthySegments, 0)
  const h = result.hostile
  assert.ok(h !== undefined, 'no hostile result')
  assert.equal(h.unexpectedAccepted, 0)
  assert.ok(h.honestRefusedLongestSeconds <= h.honestRefusedBoundSeconds)
  // Every kind of attack ran against the nodes and met its defence.
  for (const [kind, c] of Object.entries(h.attacks)) {
    assert.ok(c.attempts > 0, `${kind} never ran`)
    assert.equal(c.unexpected, 0, kind)
    assert.ok(c.refused + c.allowed > 0, `${kind}: no node answered`)
  }
  for (const kind of ['unorderedPut', 'stalledPut', 'forgedUpdate', 'apiUnauthenticated', 'apiRebinding']) {
    assert.ok((h.attacks[kind]?.refused ?? 0) > 0, `${kind} was never refused`)
  }
})
