/**
 * The short chaos run: 12 node processes under put/get load, SIGKILLs, restarts and one wiped data
 * directory; every acknowledged file must read back and repair must heal every segment.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))

test('chaos --quick: files survive kills, restarts and a wiped disk; repair heals every segment', {
  timeout: 400_000,
}, async () => {
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [MAIN, 'chaos', '--quick', '--seed', '20261122'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const t = setTimeout(() => p.kill('SIGKILL'), 380_000)
    p.on('exit', (code) => {
      clearTimeout(t)
      resolve({ code, stdout, stderr })
    })
  })
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
