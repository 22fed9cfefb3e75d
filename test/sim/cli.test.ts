import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { simCommand } from '../../src/cli/sim.ts'
import { isNodusError } from '../../src/common/errors.ts'

const runner =
  "import('./src/cli/sim.ts').then(m=>m.simCommand(process.argv.slice(1))).then(c=>process.exit(c))"

function lastJson(args: string[]): Record<string, unknown> {
  const out = execFileSync(process.execPath, ['-e', runner, ...args], {
    cwd: new URL('../..', import.meta.url),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  const lines = out.trim().split('\n')
  return JSON.parse(lines[lines.length - 1] as string) as Record<string, unknown>
}

const TIMING = ['seconds', 'buildSeconds', 'lookupSeconds', 'peakRssMB']

describe('nodus sim (CLI)', () => {
  it('dht --json: last line is one JSON object with the required fields; same --seed, same output', () => {
    const args = ['dht', '--nodes', '3000', '--lookups', '300', '--seed', '42', '--churn', '0.1', '--json']
    const a = lastJson(args)
    const b = lastJson(args)
    for (const f of [
      'nodes',
      'lookups',
      'p50Hops',
      'p99Hops',
      'maxHops',
      'p50LatencyMs',
      'p99LatencyMs',
      'peakRssMB',
      'seconds',
    ]) {
      assert.equal(typeof a[f], 'number', f)
    }
    assert.equal(a.nodes, 3000)
    assert.equal(a.seed, 42)
    for (const f of TIMING) {
      delete a[f]
      delete b[f]
    }
    assert.deepEqual(a, b)
    const c = lastJson([
      'dht',
      '--nodes',
      '3000',
      '--lookups',
      '300',
      '--seed',
      '43',
      '--churn',
      '0.1',
      '--json',
    ])
    assert.notDeepEqual(c.hopHistogram, a.hopHistogram)
  })

  it('durability --json and placement --json end with a JSON object', () => {
    const d = lastJson(['durability', '--monte-carlo', '2000', '--json'])
    assert.equal(d.command, 'durability')
    assert.ok(Array.isArray(d.rows))
    const p = lastJson(['placement', '--nodes', '200', '--segments', '200', '--json'])
    assert.equal(p.command, 'placement')
  })

  it('rejects bad flags with INVALID_ARGUMENT', async () => {
    for (const args of [
      ['dht', '--nodes', 'lots'],
      ['dht', '--nodes', '1'],
      ['dht', '--churn', '2'],
      ['dht', '--table', 'chord'],
      ['dht', '--segments', '3'],
      ['dht', '--bogus'],
      ['teleport'],
      ['durability', '--churn-monthly', '0.1,7'],
    ]) {
      await assert.rejects(
        simCommand(args),
        (e: unknown) => isNodusError(e, 'INVALID_ARGUMENT'),
        args.join(' '),
      )
    }
  })
  it('consensus --json: both protocols in one JSON line; the same --seed prints the same commit log hash', () => {
    const args = ['consensus', '--validators', '4', '--duration', '1s', '--seed', '9', '--no-signatures']
    const a = lastJson([...args, '--partition', '3/1@200ms-500ms', '--crash', '1@300ms-600ms', '--json'])
    const b = lastJson([...args, '--partition', '3/1@200ms-500ms', '--crash', '1@300ms-600ms', '--json'])
    const protocols = a.protocols as {
      protocol: string
      safetyViolations: number
      details: { commitLogHash?: string }
    }[]
    assert.deepEqual(
      protocols.map((p) => p.protocol),
      ['mysticeti', 'snowball'],
    )
    for (const p of protocols) assert.equal(p.safetyViolations, 0)
    const hash = (x: Record<string, unknown>) =>
      (x.protocols as { details: { commitLogHash?: string } }[])[0]?.details.commitLogHash
    assert.match(String(hash(a)), /^[0-9a-f]{64}$/)
    assert.equal(hash(a), hash(b))
  })

  it('consensus rejects bad specs with INVALID_ARGUMENT', async () => {
    for (const args of [
      ['consensus', '--partition', '6/3@1s-2s'],
      ['consensus', '--latency', 'gaussian:3'],
      ['consensus', '--crash', '2@5s-1s'],
      ['consensus', '--protocol', 'pbft'],
      ['consensus', '--validators', '4', '--byzantine', '3', '--crash', '2@1s'],
    ])
      await assert.rejects(
        simCommand(args),
        (err: unknown) => isNodusError(err) && err.code === 'INVALID_ARGUMENT',
        args.join(' '),
      )
  })
})
