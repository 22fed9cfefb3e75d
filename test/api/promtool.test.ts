/**
 * `promtool check metrics` (Debian package prometheus) reports nothing on a live node's /metrics.
 * In CI promtool must be there (.ci/run installs it); elsewhere the test skips without it.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { initNode } from '../../src/cli/init.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { loadConfig } from '../../src/config/config.ts'
import { createNode } from '../../src/node/node.ts'

const promtool = spawnSync('promtool', ['--version']).status === 0
const skip =
  !promtool && process.env.CI === undefined ? 'promtool not installed (apt-get install prometheus)' : false

test('promtool check metrics is clean on /metrics', { skip, timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-promtool-'))
  const { token } = await initNode(dir, { storage: { segmentSize: 65536, k: 4, m: 2 } })
  const node = await createNode(await loadConfig(dir), { logger: silentLogger() })
  try {
    await node.start()
    const api = node.info().api
    // Some activity so labelled series and histograms exist.
    const put = await fetch(`${api}/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: randomBytes(200_000),
    })
    const { cid } = (await put.json()) as { cid: string }
    await (await fetch(`${api}/files/${cid}`)).arrayBuffer()
    const text = await (await fetch(`${api}/metrics`)).text()
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`)
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '')
  } finally {
    await node.stop()
    await rm(dir, { recursive: true, force: true })
  }
})
