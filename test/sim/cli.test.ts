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
})
