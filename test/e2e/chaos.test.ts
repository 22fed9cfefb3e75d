/**
 * The short chaos run: 12 node processes under put/get load, SIGKILLs, restarts and one wiped data
 * directory; every acknowledged file must read back and repair must heal every segment.
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
