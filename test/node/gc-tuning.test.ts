import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { GC_FLAGS, HARD_TRIGGER_PERCENT, SOFT_TRIGGER_PERCENT, tuneGc } from '../../src/node/gc-tuning.ts'

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
    // In a child: a value V8 rejects would print an error; applied flags leave no output.
    const script = `import { tuneGc } from ${JSON.stringify(new URL('../../src/node/gc-tuning.ts', import.meta.url).href)}
      const set = tuneGc({}); const a = []; for (let i = 0; i < 2e5; i++) a.push({ i }); console.log(set, a.length)`
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
    assert.equal(out.trim(), 'true 200000')
  })
})
