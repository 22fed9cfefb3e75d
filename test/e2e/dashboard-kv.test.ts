/**
 * The dashboard's kv panel: the kv fields of the metrics sampler in Node, and the panel in Debian's
 * headless Chromium against a real node holding a database with a few keys: the database listed with
 * its op count (GET /kv, GET /kv/:db), the key lookup showing values as text (GET /kv/:db/:key), and
 * the applied and refused totals from /metrics.
 * `NODUS_SCREENSHOT=/tmp/kv.png` saves a screenshot of the panel.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Browser } from 'playwright-core'
import { createSampler, parseMetrics } from '../../src/api/dashboard/prom.js'
import { createArgs, ed25519OpSigner, encodeOp, formatDbId, type OpInput } from '../../src/kv/index.ts'
import { type ApiNode, startApiNode } from '../utils/api-node.ts'
import { launchChromium, openDashboard, skipBrowser, watchedPage } from '../utils/chromium.ts'

describe('dashboard prom.js kv fields', () => {
  const scrape = (local: number, gossip: number, refused: number, done: number, failed: number) =>
    parseMetrics(
      [
        `nodus_kv_ops_applied_total{source="local"} ${local}`,
        `nodus_kv_ops_applied_total{source="gossip"} ${gossip}`,
        `nodus_kv_ops_refused_total{reason="kv_unauthorized"} ${refused}`,
        'nodus_kv_ops_refused_total{reason="kv_op_duplicate"} 3',
        `nodus_kv_syncs_total{result="done"} ${done}`,
        `nodus_kv_syncs_total{result="failed"} ${failed}`,
      ].join('\n'),
    )

  test('rates of ops applied by source, refused (all reasons) and syncs started', () => {
    const sample = createSampler()
    const first = sample(scrape(0, 0, 0, 0, 0), 100)
    assert.equal(first.kvAppliedLocalPerSecond, null)
    const second = sample(scrape(20, 8, 4, 2, 2), 104)
    assert.equal(second.kvAppliedLocalPerSecond, 5)
    assert.equal(second.kvAppliedGossipPerSecond, 2)
    assert.equal(second.kvAppliedSyncPerSecond, 0) // no sample for source="sync" yet: 0 → 0
    assert.equal(second.kvRefusedPerSecond, 1) // kv_unauthorized 0 → 4 in 4 s; duplicates stay 3
    assert.equal(second.kvSyncsPerSecond, 1)
    assert.equal(second.kvSyncsFailedPerSecond, 0.5)
  })
})

describe('dashboard kv panel in Chromium', { skip: skipBrowser }, () => {
  let n: ApiNode | undefined
  let browser: Browser | undefined

  before(async () => {
    n = await startApiNode()
    browser = await launchChromium()
  })

  after(async () => {
    await browser?.close()
    await n?.stop()
  })

  test('lists the database with its op count; the key lookup shows values as text; kv totals', {
    timeout: 120_000,
  }, async () => {
    assert.ok(n !== undefined && browser !== undefined)
    const { api, token, node } = n
    const db = formatDbId('dash', node.identity.ed25519.publicKey.raw)
    const signer = ed25519OpSigner(node.identity.ed25519)
    let ms = Date.now()
    const markup = 'hello <b>bold</b> & <img src=x onerror="document.title=1">'
    const inputs: Omit<OpInput, 'hlc'>[] = [
      { db, key: '', type: 'db', op: 'create', args: createArgs() },
      { db, key: 'greeting', type: 'string', op: 'set', args: [markup] },
      { db, key: 'h', type: 'hash', op: 'hset', args: ['f1', 'v1', 'f2', 2] },
      { db, key: 'z', type: 'zset', op: 'zadd', args: [1, 'a', 2, 'b'] },
    ]
    const ops = []
    for (const input of inputs) ops.push(await encodeOp({ ...input, hlc: { ms: ms++, c: 0 } }, signer))
    const forged = (ops[3]?.bytes ?? new Uint8Array()).slice()
    forged[12] = (forged[12] as number) ^ 1
    const res = await fetch(`${api}/kv/ops`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        ops: [...ops.map((o) => o.bytes), forged].map((b) => Buffer.from(b).toString('base64')),
      }),
    })
    assert.equal(res.status, 200)
    const { results } = (await res.json()) as { results: { status: string; code?: string }[] }
    assert.deepEqual(
      results.map((r) => r.code ?? r.status),
      ['applied', 'applied', 'applied', 'applied', 'SIGNATURE_INVALID'],
    )

    const { context, page, problems, outside } = await watchedPage(browser, api)
    try {
      await openDashboard(page, api, token)
      const panel = page.locator('#kv')
      const row = panel.locator(`tr[data-db="${db}"]`)
      await row.waitFor()
      assert.equal(await row.locator('td[data-ops]').getAttribute('data-ops'), '4')
      assert.equal(await row.locator('td').nth(1).textContent(), 'yes')
      assert.equal(await row.locator('td').nth(3).textContent(), 'never')

      // Pick the database from its row, then look a key up: the markup is shown, not rendered.
      await row.getByRole('button', { name: `Look up a key in ${db}` }).click()
      assert.equal(await page.getByLabel('Database', { exact: true }).inputValue(), db)
      await page.getByLabel('Key', { exact: true }).fill('greeting')
      await panel.getByRole('button', { name: 'Look up', exact: true }).click()
      await page.locator('#kv-value[data-type="string"]').waitFor()
      assert.equal(await page.locator('#kv-value code').textContent(), markup)
      assert.equal(await page.locator('#kv-value b, #kv-value img').count(), 0)
      assert.notEqual(await page.title(), '1')

      // A hash, as JSON; a missing key, as the API's error.
      await page.getByLabel('Key', { exact: true }).fill('h')
      await panel.getByRole('button', { name: 'Look up', exact: true }).click()
      await page.locator('#kv-value[data-type="hash"]').waitFor()
      const shown = JSON.parse((await page.locator('#kv-value code').textContent()) ?? '') as unknown
      assert.deepEqual(shown, [
        ['f1', 'v1'],
        ['f2', 2],
      ])
      await page.getByLabel('Key', { exact: true }).fill('nothing')
      await panel.getByRole('button', { name: 'Look up', exact: true }).click()
      await panel
        .getByRole('alert')
        .getByText(/^KV_KEY_NOT_FOUND: /)
        .waitFor()
      assert.equal(await page.locator('#kv-value').count(), 0)

      // The node's counters, from /metrics.
      await page.locator('#kv-applied-total').getByText('4', { exact: true }).waitFor()
      await page.locator('#kv-refused-total').getByText('1', { exact: true }).waitFor()
      assert.equal(await page.locator('#kv-refused-reasons').textContent(), ' signature_invalid 1')

      if (process.env.NODUS_SCREENSHOT !== undefined)
        await panel.screenshot({ path: process.env.NODUS_SCREENSHOT })
      // The one failure expected: the lookup of the missing key (Chromium logs each 404 it loads).
      const notFound = /^console: Failed to load resource: .* status of 404 \(Not Found\)$/
      assert.deepEqual(
        problems.filter((p) => !notFound.test(p)),
        [],
      )
      assert.equal(problems.length, 1, problems.join('\n'))
      assert.deepEqual(outside, [], 'the page must not request anything from another origin')
    } finally {
      await context.close()
    }
  })
})
