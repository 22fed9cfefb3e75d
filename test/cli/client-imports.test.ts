import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { test } from 'node:test'

// An ES import of node:http reads all its exports, and Node 24's lazy WebSocket/EventSource exports
// then load undici (about 2 MB in an idle node, which uses none of it). The CLI's client, which
// `nodus start` also loads, must take node:http some other way (src/cli/client.ts).
test('loading the CLI client does not load undici', () => {
  const client = new URL('../../src/cli/client.ts', import.meta.url).href
  const script = `await import(${JSON.stringify(client)})
    const loaded = process.moduleLoadList.filter((m) => m.includes('undici'))
    await import('node:http') // the control: an ES import does load it
    console.log(JSON.stringify({ loaded, control: process.moduleLoadList.some((m) => m.includes('undici')) }))`
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
  const r = JSON.parse(out) as { loaded: string[]; control: boolean }
  assert.deepEqual(r.loaded, [])
  assert.equal(
    r.control,
    true,
    'this Node no longer loads undici on an ES import of node:http: drop this test',
  )
})
