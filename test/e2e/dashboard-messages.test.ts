/**
 * The dashboard's messages panel: its pure parts in Node (the server-sent-event parser it reads the
 * node's streams with, message body previews, the pub/sub fields of the metrics sampler), and the panel
 * in Debian's headless Chromium against a real node: topics from GET /pubsub, totals and latency from
 * /metrics, a live tail that shows messages published through POST /pubsub/:topic, as text only, and
 * the inbox with a direct message the node sent itself.
 * `NODUS_SCREENSHOT=/tmp/messages.png` saves a screenshot of the panel.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Browser } from 'playwright-core'
import { decodeBase64, previewBytes } from '../../src/api/dashboard/format.js'
import { createSampler, parseMetrics } from '../../src/api/dashboard/prom.js'
import { createSseParser } from '../../src/api/dashboard/sse.js'
import { type ApiNode, startApiNode } from '../utils/api-node.ts'
import { launchChromium, openDashboard, skipBrowser, watchedPage } from '../utils/chromium.ts'

describe('dashboard sse.js (server-sent events read from fetch)', () => {
  const stream = [
    ': subscribed',
    '',
    'event: message',
    'id: peer:0',
    'data: {"a":1}',
    '',
    ': keep-alive',
    '',
    'data:first',
    'data: second',
    'retry: 10',
    'unknown: x',
    '',
    'event: closed',
    'data: {"reason":"slow"}',
    '',
    'event: nothing',
    '',
    'data: not ended',
  ]
  const expected = [
    ['message', '{"a":1}', 'peer:0'],
    ['message', 'first\nsecond', 'peer:0'],
    ['closed', '{"reason":"slow"}', 'peer:0'],
  ]

  for (const [name, eol] of [
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ] as const) {
    test(`events from a stream with ${name} line ends, whole and split at every character`, () => {
      const text = stream.join(eol)
      for (const split of [false, true]) {
        const got: string[][] = []
        const push = createSseParser((n, d, id) => got.push([n, d, id]))
        if (split) for (const c of text) push(c)
        else push(text)
        assert.deepEqual(got, expected, split ? 'split' : 'whole')
      }
    })
  }

  test('a CRLF split between two chunks ends one line, not two', () => {
    const got: string[][] = []
    const push = createSseParser((n, d) => got.push([n, d]))
    push('data: a\r')
    push('\ndata: b\r')
    push('\n\r\n')
    assert.deepEqual(got, [['message', 'a\nb']])
  })
})

describe('dashboard format.js (message body previews)', () => {
  const utf8 = (s: string) => new TextEncoder().encode(s)

  test('UTF-8 text is shown as it is, markup included (the page renders it as text)', () => {
    const text = 'héllo <b>x</b> & <img src=x onerror=alert(1)>\n\tend 😀'
    assert.deepEqual(previewBytes(utf8(text)), { kind: 'text', text, truncated: false })
  })

  test('long text is cut at a character, not inside one', () => {
    const p = previewBytes(utf8('😀'.repeat(300)), 200)
    assert.equal(p.kind, 'text')
    assert.equal(p.text, '😀'.repeat(200))
    assert.equal(p.truncated, true)
    // The decoded head (800 bytes) ends inside a character: held back, still text.
    const q = previewBytes(utf8(`a${'😀'.repeat(300)}`), 200)
    assert.equal(q.kind, 'text')
    assert.equal(q.text, `a${'😀'.repeat(199)}`)
  })

  test('bytes that are not text are shown as hex, cut after maxBytes', () => {
    assert.deepEqual(previewBytes(new Uint8Array([0, 1, 2, 255])), {
      kind: 'binary',
      text: '00 01 02 ff',
      truncated: false,
    })
    // Valid UTF-8 with a control character, and a truncated UTF-8 sequence at the very end.
    assert.equal(previewBytes(utf8('bell\u0007')).kind, 'binary')
    assert.equal(previewBytes(new Uint8Array([0x61, 0xf0, 0x9f])).kind, 'binary')
    const long = previewBytes(new Uint8Array(100).fill(0xab), 200, 4)
    assert.deepEqual(long, { kind: 'binary', text: 'ab ab ab ab', truncated: true })
  })

  test('base64 from the API decodes to its bytes', () => {
    const bytes = new Uint8Array([0, 255, 104, 105, 128])
    assert.deepEqual(decodeBase64(Buffer.from(bytes).toString('base64')), bytes)
  })
})

describe('dashboard prom.js pub/sub fields', () => {
  const scrape = (published: number, delivered: number, slowDrops: number, slow: number) =>
    parseMetrics(
      [
        `nodus_messaging_published_total ${published}`,
        `nodus_messaging_delivered_total ${delivered}`,
        `nodus_messaging_dropped_total{reason="slow_subscriber"} ${slowDrops}`,
        'nodus_messaging_dropped_total{reason="stale"} 1',
        'nodus_messaging_queued_messages 7',
        'nodus_messaging_latency_seconds_bucket{le="0.01"} 0',
        `nodus_messaging_latency_seconds_bucket{le="0.1"} ${delivered - slow}`,
        `nodus_messaging_latency_seconds_bucket{le="+Inf"} ${delivered}`,
      ].join('\n'),
    )

  test('rates of published, delivered and dropped messages; the queue; latency quantiles', () => {
    const sample = createSampler({ latencyWindowSeconds: 10 })
    const first = sample(scrape(0, 0, 0, 0), 100)
    assert.equal(first.pubsubPublishedPerSecond, null)
    assert.equal(first.pubsubQueued, 7)
    assert.equal(first.pubsubP50Ms, null)
    const second = sample(scrape(20, 40, 4, 2), 102)
    assert.equal(second.pubsubPublishedPerSecond, 10)
    assert.equal(second.pubsubDeliveredPerSecond, 20)
    assert.equal(second.pubsubDroppedPerSecond, 2) // slow_subscriber 0 → 4 in 2 s; stale stays 1
    // 38 of 40 deliveries in (10, 100] ms: p50 is rank 20, interpolated in that bucket.
    assert.ok(Math.abs((second.pubsubP50Ms ?? 0) - (10 + (90 * 20) / 38)) < 1e-9)
    assert.equal(second.pubsubP99Ms, 100) // rank 39.6 is in +Inf: the highest finite bound
  })
})

describe('dashboard messages panel in Chromium', { skip: skipBrowser }, () => {
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

  test('topics, totals, latency, a live tail of messages published through the API, the inbox', {
    timeout: 120_000,
  }, async () => {
    assert.ok(n !== undefined && browser !== undefined)
    const { api, token } = n
    const auth = { authorization: `Bearer ${token}` }
    const topic = 'dash chat'
    const path = `${api}/pubsub/${encodeURIComponent(topic)}`
    const text = 'hello <b>bold</b> & <img src=x onerror="document.title=1">'
    const binary = new Uint8Array([0, 1, 2, 255, 254])

    // A subscriber that is not the page: its topic is listed too.
    const news = new AbortController()
    const newsStream = await fetch(`${api}/pubsub/news`, { headers: auth, signal: news.signal })
    assert.equal(newsStream.status, 200)
    const { context, page, problems, outside } = await watchedPage(browser, api)
    try {
      await openDashboard(page, api, token)
      const panel = page.locator('#messages')
      await panel.locator('tr[data-topic="news"]').waitFor()
      await page
        .locator('#inbox-count')
        .getByText(/^The inbox is empty\./)
        .waitFor()

      // Tail a topic through the form; once the node took the subscription, the topic is listed.
      await page.getByLabel('Topic to tail').fill(topic)
      await panel.getByRole('button', { name: 'Tail', exact: true }).click()
      await page.locator('#tail-status[data-phase="open"]').waitFor()
      const row = panel.locator(`tr[data-topic="${topic}"]`)
      await row.waitFor()
      assert.equal(await row.locator('td').nth(1).textContent(), '1') // the page's subscription

      const seqs: number[] = []
      for (const body of [text, binary]) {
        const r = await fetch(path, {
          method: 'POST',
          headers: {
            ...auth,
            'content-type': typeof body === 'string' ? 'text/plain' : 'application/octet-stream',
          },
          body,
        })
        assert.equal(r.status, 200)
        seqs.push(((await r.json()) as { seq: number }).seq)
      }

      // Both in the tail, newest first; the markup in the text is shown, not rendered.
      const items = page.locator('#tail li')
      await items.nth(1).waitFor()
      assert.equal(await items.count(), 2)
      assert.equal(await items.nth(0).getAttribute('data-seq'), String(seqs[1]))
      assert.equal(await items.nth(0).locator('code.payload.binary').textContent(), '00 01 02 ff fe')
      assert.equal(await items.nth(1).getAttribute('data-seq'), String(seqs[0]))
      assert.equal(await items.nth(1).locator('code.payload.text').textContent(), text)
      assert.equal(await page.locator('#tail b, #tail img').count(), 0)
      assert.notEqual(await page.title(), '1')
      await page.locator('#tail-status').getByText(`Following “${topic}”: 2 received`).waitFor()

      // The node's counters and latency, from /metrics.
      await page.locator('#pubsub-published-total').getByText('2', { exact: true }).waitFor()
      await page.locator('#pubsub-delivered-total').getByText('2', { exact: true }).waitFor()
      await page
        .locator('#pubsub-latency')
        .getByText(/^p50 [\d.,]+ ms · p99 [\d.,]+ ms$/)
        .waitFor()
      await page
        .locator('#chart-pubsub-latency .chart-latest')
        .getByText(/p50 [\d.,]+ ms/)
        .waitFor()

      if (process.env.NODUS_SCREENSHOT !== undefined) {
        await panel.screenshot({ path: process.env.NODUS_SCREENSHOT })
      }

      // Stopping the tail closes its subscription: the topic leaves the list, the other stays.
      await page.getByRole('button', { name: 'Stop tail' }).click()
      await row.waitFor({ state: 'detached', timeout: 30_000 })
      assert.equal(await panel.locator('tr[data-topic="news"]').count(), 1)
      const listed = (await (await fetch(`${api}/pubsub`)).json()) as { topics: { topic: string }[] }
      assert.deepEqual(
        listed.topics.map((t) => t.topic),
        ['news'],
      )

      // A direct message to this node itself reaches its inbox: streamed in, then counted by the poll.
      const note = 'note to self <i>not italic</i>'
      const sent = await fetch(`${api}/messages/${n.node.info().peerId}`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'text/plain' },
        body: note,
      })
      assert.equal(sent.status, 200)
      const inboxed = page.locator('#inbox li')
      await inboxed.waitFor()
      assert.equal(await inboxed.locator('code.payload.text').textContent(), note)
      assert.equal(await page.locator('#inbox i').count(), 0)
      await page
        .locator('#inbox-count')
        .getByText(/^1 message in the inbox\. Since the node started: 1 received/)
        .waitFor()

      assert.deepEqual(problems, [])
      assert.deepEqual(outside, [], 'the page must not request anything from another origin')
    } finally {
      news.abort()
      await context.close()
    }
  })
})
