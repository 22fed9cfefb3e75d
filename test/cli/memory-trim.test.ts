/**
 * malloc trimming (src/cli/memory-trim.ts through the native addon): memory freed below a live
 * allocation stays resident until trimmed, and trimming gives it back. Runs in a child process so
 * that nothing else in the test runner allocates meanwhile. CI sets NODUS_REQUIRE_NATIVE=1, so a
 * missing addon fails there instead of skipping.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { trimMalloc } from '../../src/cli/memory-trim.ts'
import { nativeAddon } from '../../src/common/native.ts'

const haveAddon = nativeAddon() !== null && process.platform === 'linux'

/** Frees 125 MiB of 64 KiB blocks below a live block, then trims; reports RSS before and after. */
function child(env: NodeJS.ProcessEnv): { before: number; after: number; released: boolean } {
  const script = `
    import { readFileSync } from 'node:fs'
    import { freeIfWhole } from ${JSON.stringify(new URL('../../src/common/bytes.ts', import.meta.url).href)}
    import { trimMalloc } from ${JSON.stringify(new URL('../../src/cli/memory-trim.ts', import.meta.url).href)}
    const rss = () => Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096
    const blocks = []
    for (let i = 0; i < 2000; i++) blocks.push(Buffer.allocUnsafeSlow(64 * 1024).fill(i))
    const pin = Buffer.allocUnsafeSlow(64 * 1024).fill(7) // above the others: the arena's top stays live
    for (const b of blocks) assert(freeIfWhole(b))
    function assert(ok) { if (!ok) throw new Error('block not freed') }
    const before = rss()
    const released = trimMalloc(process.env)
    const after = rss()
    console.log(JSON.stringify({ before, after, released, pin: pin[0] }))
  `
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout) as { before: number; after: number; released: boolean }
}

describe('malloc trimming', () => {
  it('gives back memory freed below a live allocation', (t) => {
    if (!haveAddon) {
      if (process.env.NODUS_REQUIRE_NATIVE === '1') assert.fail('the native addon is not built')
      t.skip('native addon not built (scripts/build-native.ts)')
      return
    }
    const { before, after, released } = child({ ...process.env, NODUS_MALLOC_TRIM: '1' })
    assert.equal(released, true)
    assert.ok(before - after > 100 * 2 ** 20, `RSS ${before} → ${after} bytes: less than 100 MiB released`)
  })

  it('does nothing when NODUS_MALLOC_TRIM=0', (t) => {
    if (!haveAddon) {
      t.skip('native addon not built (scripts/build-native.ts)')
      return
    }
    assert.equal(trimMalloc({ NODUS_MALLOC_TRIM: '0' }), false)
    const { before, after, released } = child({ ...process.env, NODUS_MALLOC_TRIM: '0' })
    assert.equal(released, false)
    assert.ok(before - after < 16 * 2 ** 20, `RSS ${before} → ${after} bytes without trimming`)
  })
})
