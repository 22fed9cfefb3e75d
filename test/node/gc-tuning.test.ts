import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import {
  collectStartupGarbage,
  GC_FLAGS,
  HARD_TRIGGER_PERCENT,
  SOFT_TRIGGER_PERCENT,
  tuneGc,
} from '../../src/node/gc-tuning.ts'

describe('gc tuning', () => {
  it('names flags this Node’s V8 knows (setFlagsFromString ignores unknown ones silently)', () => {
    const options = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' })
    for (const flag of GC_FLAGS) {
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
    const script = `import { tuneGc } from ${JSON.stringify(new URL('../../src/node/gc-tuning.ts', import.meta.url).href)}
      const set = tuneGc({}); const a = []; for (let i = 0; i < 2e5; i++) a.push({ i }); console.log(set, a.length)`
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
    assert.equal(out.trim(), 'true 200000')
  })

  it('collects start-up garbage: the young generation shrinks, and no gc global is left behind', () => {
    assert.equal(collectStartupGarbage({ NODUS_V8_GC: 'default' }), false)
    // In a child, so that this test process's heap is not disturbed: grow the young generation with
    // short-lived objects, then collect; V8 reports the new space's committed size before and after.
    const script = `import { getHeapSpaceStatistics } from 'node:v8'
      import { collectStartupGarbage } from ${JSON.stringify(new URL('../../src/node/gc-tuning.ts', import.meta.url).href)}
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
