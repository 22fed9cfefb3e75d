import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  collectStartupGarbage,
  GC_FLAGS,
  HARD_TRIGGER_PERCENT,
  SOFT_TRIGGER_PERCENT,
  START_ENV,
  START_V8_FLAGS,
  startEnv,
  startV8Flags,
  tuneGc,
} from '../../src/cli/gc-tuning.ts'

describe('gc tuning', () => {
  it('names flags this Node’s V8 knows (setFlagsFromString ignores unknown ones silently)', () => {
    const options = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' })
    for (const flag of [...GC_FLAGS, ...START_V8_FLAGS]) {
      const name = flag.slice(0, flag.indexOf('='))
      assert.match(options, new RegExp(`^\\s+${name} `, 'm'), `${name} missing from --v8-options`)
    }
    assert.ok(
      SOFT_TRIGGER_PERCENT > 0 && SOFT_TRIGGER_PERCENT < HARD_TRIGGER_PERCENT && HARD_TRIGGER_PERCENT < 100,
    )
  })

  it('sets the flags in a running process, unless NODUS_V8_GC=default', () => {
    assert.equal(tuneGc({ NODUS_V8_GC: 'default' }), false)
    assert.equal(tuneGc({ NODUS_V8_GC_FLAGS: GC_FLAGS.join(' ') }), true) // the override path, same flags
    // In a child: a value V8 rejects would print an error; applied flags leave no output.
    const script = `import { tuneGc } from ${JSON.stringify(new URL('../../src/cli/gc-tuning.ts', import.meta.url).href)}
      const set = tuneGc({}); const a = []; for (let i = 0; i < 2e5; i++) a.push({ i }); console.log(set, a.length)`
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
    assert.equal(out.trim(), 'true 200000')
  })

  it('collects start-up garbage: the young generation shrinks, and no gc global is left behind', () => {
    assert.equal(collectStartupGarbage({ NODUS_V8_GC: 'default' }), false)
    // In a child, so that this test process's heap is not disturbed: grow the young generation with
    // short-lived objects, then collect; V8 reports the new space's committed size before and after.
    const script = `import { getHeapSpaceStatistics } from 'node:v8'
      import { collectStartupGarbage } from ${JSON.stringify(new URL('../../src/cli/gc-tuning.ts', import.meta.url).href)}
      const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size
      let keep = []
      for (let i = 0; i < 3e6; i++) { keep.push({ i, a: [i] }); if (keep.length > 2e5) keep = [] }
      keep = []
      const before = young()
      const ran = collectStartupGarbage({})
      console.log(JSON.stringify({ before, after: young(), ran, gcGlobal: typeof globalThis.gc }))`
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
    const r = JSON.parse(out) as { before: number; after: number; ran: boolean; gcGlobal: string }
    assert.equal(r.ran, true)
    assert.equal(r.gcGlobal, 'undefined')
    assert.ok(r.before >= 8 * 2 ** 20, `young generation did not grow (${r.before} bytes)`)
    assert.ok(r.after * 4 <= r.before, `young generation ${r.before} → ${r.after} bytes`)
  })
})

describe('bin/nodus.js start', () => {
  const bin = new URL('../../bin/nodus.js', import.meta.url).pathname
  /** Runs `nodus start` on an empty data dir (it stops at KEYS_MISSING) with a preload that prints execArgv. */
  function launch(env: NodeJS.ProcessEnv): { pid: number; execArgv: string[]; arenas: string | null }[] {
    const dir = mkdtempSync(join(tmpdir(), 'nodus-launch-'))
    try {
      const pre = join(dir, 'pre.mjs')
      writeFileSync(
        pre,
        'console.log("LAUNCH " + JSON.stringify({ pid: process.pid, execArgv: process.execArgv, arenas: process.env.MALLOC_ARENA_MAX ?? null }))',
      )
      const r = spawnSync(
        process.execPath,
        ['--import', pre, bin, 'start', '--data-dir', join(dir, 'data')],
        {
          encoding: 'utf8',
          env: { ...process.env, ...env },
        },
      )
      assert.match(r.stderr + r.stdout, /KEYS_MISSING/)
      return r.stdout
        .split('\n')
        .filter((l) => l.startsWith('LAUNCH '))
        .map((l) => JSON.parse(l.slice(7)) as { pid: number; execArgv: string[]; arenas: string | null })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  it('re-executes itself, same PID, with V8 heap flags read only at start-up; not with NODUS_V8_GC=default', () => {
    const runs = launch({ MALLOC_ARENA_MAX: undefined })
    assert.equal(runs.length, 2, 'the launcher and the process it became')
    const [first, second] = runs as [(typeof runs)[0], (typeof runs)[0]]
    assert.equal(second.pid, first.pid)
    assert.ok(!first.execArgv.some((a) => a.startsWith('--initial-old-space-size=')))
    assert.ok(second.execArgv.some((a) => /^--initial-old-space-size=\d+$/.test(a)))
    assert.ok(second.execArgv.includes('--import'), 'the caller’s own node flags are kept')
    const plain = launch({ NODUS_V8_GC: 'default' })
    assert.equal(plain.length, 1)
    assert.deepEqual(startV8Flags({ NODUS_V8_GC: 'default' }), [])
    assert.deepEqual(startV8Flags({}), START_V8_FLAGS)
    assert.deepEqual(startV8Flags({ NODUS_V8_START_FLAGS: ' --a=1  --b ' }), ['--a=1', '--b'])
    assert.deepEqual(startV8Flags({ NODUS_V8_START_FLAGS: '' }), [])
    assert.deepEqual(startV8Flags({ NODUS_V8_START_FLAGS: '--a', NODUS_V8_GC: 'default' }), [])
    for (const f of START_V8_FLAGS) assert.ok(second.execArgv.includes(f), f)
  })

  it('starts the node with MALLOC_ARENA_MAX=2 unless the caller set it', () => {
    const runs = launch({ MALLOC_ARENA_MAX: undefined })
    assert.deepEqual(
      runs.map((r) => r.arenas),
      [null, START_ENV.MALLOC_ARENA_MAX],
    )
    const own = launch({ MALLOC_ARENA_MAX: '4' })
    assert.deepEqual(
      own.map((r) => r.arenas),
      ['4', '4'],
    )
    assert.deepEqual(startEnv({ MALLOC_ARENA_MAX: '4' }), {})
    assert.deepEqual(startEnv({ NODUS_V8_GC: 'default' }), {})
    assert.deepEqual(startEnv({}), { MALLOC_ARENA_MAX: '2' })
  })
})
