/**
 * End to end: the web dashboard of a real node (in process, loopback, real disk), driven in Debian's
 * headless Chromium through playwright-core. The page gets the API token pasted, uploads a real file
 * through its file input, lists it, draws its shard map, downloads it (bytes compared), and shows usage
 * and live charts. Also: the Prometheus parsing the page does (prom.js) and how the assets are served.
 * The messages panel has its own test (dashboard-messages.test.ts).
 *
 * Chromium: test/utils/chromium.ts. `NODUS_SCREENSHOT=/tmp/dash.png` saves a full-page screenshot.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Browser } from 'playwright-core'
import {
  bucketDelta,
  createSampler,
  histogramBuckets,
  histogramQuantile,
  parseMetrics,
  sumSamples,
} from '../../src/api/dashboard/prom.js'
import { initNode } from '../../src/cli/init.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { loadConfig } from '../../src/config/config.ts'
import { createNode, type NodusNode } from '../../src/node/node.ts'
import { launchChromium, openDashboard, skipBrowser, watchedPage } from '../utils/chromium.ts'
import { waitFor } from '../utils/wait.ts'

describe('dashboard prom.js (Prometheus text parsing in the page)', () => {
  const text = [
    '# HELP nodus_api_request_seconds HTTP API request duration',
    '# TYPE nodus_api_request_seconds histogram',
    'nodus_api_request_seconds_bucket{le="0.001",route="/a",method="GET"} 1',
    'nodus_api_request_seconds_bucket{le="0.01",route="/a",method="GET"} 3',
    'nodus_api_request_seconds_bucket{le="+Inf",route="/a",method="GET"} 4',
    'nodus_api_request_seconds_bucket{le="0.001",route="/b \\"x\\", {y}",method="GET"} 1',
    'nodus_api_request_seconds_bucket{le="0.01",route="/b \\"x\\", {y}",method="GET"} 1',
    'nodus_api_request_seconds_bucket{le="+Inf",route="/b \\"x\\", {y}",method="GET"} 2',
    'nodus_api_request_seconds_sum{route="/a",method="GET"} 0.5',
    'nodus_storage_file_bytes_total{direction="put"} 1000',
    'nodus_storage_file_bytes_total{direction="get"} 2.5e3',
    'nodejs_eventloop_lag_p99_seconds 0.012',
    'garbage line {',
    '',
  ].join('\n')

  test('parses samples, escaped label values, exponents and +Inf', () => {
    const m = parseMetrics(text)
    assert.equal(sumSamples(m, 'nodus_storage_file_bytes_total', { direction: 'get' }), 2500)
    assert.equal(sumSamples(m, 'nodus_storage_file_bytes_total'), 3500)
    assert.equal(sumSamples(m, 'nodus_storage_file_bytes_total', { direction: 'nope' }), undefined)
    const routes = (m.get('nodus_api_request_seconds_bucket') ?? []).map((s) => s.labels.route)
    assert.ok(routes.includes('/b "x", {y}'))
    assert.deepEqual(histogramBuckets(m, 'nodus_api_request_seconds'), [
      { le: 0.001, count: 2 },
      { le: 0.01, count: 4 },
      { le: Number.POSITIVE_INFINITY, count: 6 },
    ])
  })

  test('quantiles interpolate like PromQL histogram_quantile', () => {
    const b = [
      { le: 0.001, count: 2 },
      { le: 0.01, count: 4 },
      { le: Number.POSITIVE_INFINITY, count: 6 },
    ]
    assert.equal(histogramQuantile(0.25, b), 0.00075) // rank 1.5 of 2 in [0, 1 ms]
    assert.ok(Math.abs((histogramQuantile(0.5, b) ?? 0) - 0.0055) < 1e-12) // rank 3: halfway in (1, 10] ms
    assert.equal(histogramQuantile(0.99, b), 0.01) // in +Inf: the highest finite bound
    assert.equal(histogramQuantile(0.5, [{ le: Number.POSITIVE_INFINITY, count: 0 }]), null)
    assert.deepEqual(
      bucketDelta(b, b)?.map((x) => x.count),
      [0, 0, 0],
    )
    assert.equal(bucketDelta([{ le: 1, count: 0 }], [{ le: 1, count: 3 }]), undefined) // reset
  })

  test('the sampler turns scrapes into rates and windowed percentiles', () => {
    const sample = createSampler({ latencyWindowSeconds: 10 })
    const first = sample(parseMetrics(text), 100)
    assert.equal(first.getBytesPerSecond, null)
    assert.equal(first.apiP50Ms, null)
    assert.equal(first.eventLoopLagP99Ms, 12)
    const later = text
      .replace('direction="get"} 2.5e3', 'direction="get"} 4500')
      .replace('le="+Inf",route="/a",method="GET"} 4', 'le="+Inf",route="/a",method="GET"} 14')
    const second = sample(parseMetrics(later), 102)
    assert.equal(second.getBytesPerSecond, 1000)
    assert.equal(second.putBytesPerSecond, 0)
    assert.equal(second.apiP50Ms, 10) // all 10 new observations are above 10 ms: the highest bound
  })
})

describe('dashboard in Chromium', { skip: skipBrowser }, () => {
  let dir = ''
  let node: NodusNode | undefined
  let browser: Browser | undefined
  let api = ''
  let token = ''

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nodus-dashboard-'))
    ;({ token } = await initNode(dir, { storage: { segmentSize: 65536, k: 4, m: 2 } }))
    node = await createNode(await loadConfig(dir), { logger: silentLogger() })
    await node.start()
    api = node.info().api
    browser = await launchChromium()
  })

  after(async () => {
    await browser?.close()
    await node?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  test('assets are served with content types and cache headers, and stay out of OpenAPI', async () => {
    const page = await fetch(`${api}/`)
    assert.equal(page.status, 200)
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8')
    assert.equal(page.headers.get('cache-control'), 'no-cache')
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self' 'sha256-/)
    const etag = page.headers.get('etag')
    assert.ok(etag !== null)
    assert.match(await page.text(), /<div id="app">/)
    const again = await fetch(`${api}/`, { headers: { 'if-none-match': etag } })
    assert.equal(again.status, 304)

    for (const path of [
      '/ui/app.js',
      '/ui/prom.js',
      '/ui/vendor/preact.mjs',
      '/ui/vendor/hooks.mjs',
      '/ui/vendor/htm.mjs',
      '/ui/vendor/uPlot.esm.js',
    ]) {
      const r = await fetch(`${api}${path}`)
      assert.equal(r.status, 200, path)
      assert.equal(r.headers.get('content-type'), 'text/javascript; charset=utf-8', path)
      await r.arrayBuffer()
    }
    const css = await fetch(`${api}/ui/vendor/uPlot.min.css`)
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8')
    await css.arrayBuffer()
    for (const path of [
      '/ui/prom.d.ts',
      '/ui/nope.js',
      '/ui/..%2fdashboard.ts',
      '/ui/vendor/../../server.ts',
    ]) {
      const r = await fetch(`${api}${path}`)
      assert.equal(r.status, 404, path)
      await r.arrayBuffer()
    }
    const doc = (await (await fetch(`${api}/openapi.json`)).json()) as { paths: Record<string, unknown> }
    assert.equal(doc.paths['/'], undefined)
    assert.ok(!Object.keys(doc.paths).some((p) => p.startsWith('/ui')))
  })

  test('upload, list, shard map, download, usage and charts in the page', { timeout: 240_000 }, async () => {
    assert.ok(browser !== undefined)
    const data = randomBytes(300_000)
    const name = 'random-300k.bin'
    const file = join(dir, name)
    await writeFile(file, data)

    const { context, page, problems, outside } = await watchedPage(browser, api, { acceptDownloads: true })
    try {
      // The page, with the token pasted.
      await openDashboard(page, api, token)

      // Upload through the file input.
      await page.getByLabel('File', { exact: true }).setInputFiles(file)
      await page.getByRole('button', { name: 'Upload', exact: true }).click()
      const result = page.locator('#upload-result')
      await result.waitFor({ timeout: 120_000 })
      const cid = ((await result.locator('code').textContent()) ?? '').trim()
      assert.match(cid, /^b[a-z2-7]+$/)
      const listed = (await (await fetch(`${api}/files`)).json()) as { files: { cid: string }[] }
      assert.ok(listed.files.some((f) => f.cid === cid))

      // It appears in the files list.
      const row = page.locator(`tr[data-cid="${cid}"]`)
      await row.waitFor()
      assert.match((await row.textContent()) ?? '', new RegExp(name.replace('.', '\\.')))

      // Its shard map: one cell per shard of every segment, each with a holder.
      const manifest = (await (await fetch(`${api}/files/${cid}/manifest`)).json()) as {
        k: number
        m: number
        segments: unknown[]
      }
      await row.getByRole('button', { name: `Shard map of ${name}` }).click()
      const grid = page.locator('#shard-map table.shard-grid')
      await grid.waitFor({ timeout: 60_000 })
      assert.equal(
        await grid.locator('td.shard').count(),
        manifest.segments.length * (manifest.k + manifest.m),
      )
      assert.equal(await grid.locator('td.shard.missing').count(), 0)
      await page.locator('#shard-map ul.legend').getByText('(this node)').waitFor()

      // Download through the page; the bytes come back.
      const [download] = await Promise.all([
        page.waitForEvent('download', { timeout: 60_000 }),
        row.getByRole('link', { name: `Download ${name}` }).click(),
      ])
      assert.equal(download.suggestedFilename(), name)
      const saved = join(dir, 'downloaded.bin')
      await download.saveAs(saved)
      assert.ok((await readFile(saved)).equals(data), 'downloaded bytes differ from the uploaded file')

      // Usage panel (polled every 5 s): the shards just stored, as the API counts them.
      const usage = (await (await fetch(`${api}/storage/usage`)).json()) as { shards: number; bytes: number }
      assert.ok(usage.shards > 0)
      await page
        .locator('#usage-shards')
        .getByText(usage.shards.toLocaleString('en'), { exact: true })
        .waitFor()
      const meter = await page.locator('#usage-meter').getAttribute('value')
      assert.equal(Number(meter), usage.bytes)

      // Charts: six uPlot canvases, a few scrapes of /metrics, and an API latency read off them.
      // (Polled from here, not waitForFunction: the page's CSP forbids the eval a string predicate needs.)
      assert.equal(await page.locator('#live figure.chart canvas').count(), 6)
      await waitFor(async () => Number(await page.locator('#chart-api').getAttribute('data-points')) >= 3, {
        timeoutMs: 30_000,
        what: 'three scrapes on the API latency chart',
        intervalMs: 200,
      })
      await page
        .locator('#chart-api .chart-latest')
        .getByText(/p50 [\d.,]+ ms/)
        .waitFor()

      if (process.env.NODUS_SCREENSHOT !== undefined) {
        await page.screenshot({ path: process.env.NODUS_SCREENSHOT, fullPage: true })
      }
      assert.deepEqual(problems, [])
      assert.deepEqual(outside, [], 'the page must not request anything from another origin')
    } finally {
      await context.close()
    }
  })
})
