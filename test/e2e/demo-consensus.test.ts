/**
 * End to end (issue 21): `nodus demo --scenario consensus` small: 4 validator processes, transfers
 * from two nodes at a steady rate, one validator SIGKILLed and restarted; every accepted transaction
 * commits exactly once and every node ends with one state root. Plus its refusal of a kill beyond f.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { runCli } from '../utils/run-cli.ts'

let dir = ''
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-e2e-consensus-demo-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

test('demo --scenario consensus: 4 validators, 1 killed and restarted; exactly-once commits, one root', {
  timeout: 150_000,
}, async () => {
  const base = join(dir, 'net')
  const r = await runCli(
    [
      'demo',
      '--scenario',
      'consensus',
      '--nodes',
      '4',
      '--kill',
      '1',
      '--senders',
      '2',
      '--rate',
      '60',
      '--seconds',
      '9',
      '--base-dir',
      base,
      '--log-level',
      'warn',
    ],
    140_000,
  )
  const last = r.stdout.trim().split('\n').pop() ?? ''
  assert.equal(r.code, 0, `demo failed:\n${r.stderr.slice(-3000)}\n${last}`)
  const result = JSON.parse(last) as Record<string, unknown>
  assert.equal(result.ok, true)
  assert.equal(result.scenario, 'consensus')
  assert.equal(result.validators, 4)
  assert.equal(result.killed, 1)
  assert.ok((result.txAccepted as number) > 100, `accepted ${String(result.txAccepted)}`)
  assert.equal(result.txCommitted, result.txAccepted)
  assert.match(result.stateRoot as string, /^[0-9a-f]{64}$/)
  assert.ok((result.p50FinalityMs as number) > 0)
  assert.ok((result.p99FinalityMs as number) >= (result.p50FinalityMs as number))
  assert.deepEqual(await readdir(base), [], 'temporary directories left behind')
})

test('demo --scenario consensus refuses more kills than f before starting anything', {
  timeout: 30_000,
}, async () => {
  const r = await runCli(['demo', '--scenario', 'consensus', '--nodes', '4', '--kill', '2'], 20_000)
  assert.equal(r.code, 2)
  assert.match(r.stderr, /INVALID_ARGUMENT.*f = 1/)
})
