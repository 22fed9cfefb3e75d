/**
 * Messages: pub/sub topics, message rates and latency (from `/metrics`), a live tail of one topic
 * (`GET /pubsub/:topic`, server-sent events) and the direct-message inbox (`GET /messages`,
 * `GET /messages/stream`). Message bodies are untrusted: they are shown as text nodes only (preact
 * escapes every interpolated string), as a truncated preview (format.js previewBytes).
 */
import htm from 'htm'
import { h } from 'preact'
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { authHint, followEvents, getJson, token, usePoll } from './api.js'
import { Chart, chartData } from './charts.js'
import { decodeBase64, formatBytes, formatNumber, orDash, previewBytes, shorten } from './format.js'
import { ms, percentiles, perSecond } from './live.js'
import { ErrorLine } from './panels.js'
import { sumSamples } from './prom.js'

const html = htm.bind(h)
/** Messages kept in the tail, newest first; older ones are forgotten. */
const TAIL_MAX = 100
/** Inbox messages read per poll of `GET /messages`; a full page means there may be more. */
const INBOX_PAGE = 100
/** Newest inbox messages shown. */
const INBOX_SHOWN = 5

const CHARTS = [
  {
    id: 'chart-pubsub-rates',
    title: 'Pub/sub messages (whole node)',
    format: perSecond,
    series: [
      { field: 'pubsubPublishedPerSecond', label: 'published', color: '#4e79a7' },
      { field: 'pubsubDeliveredPerSecond', label: 'delivered', color: '#59a14f' },
      { field: 'pubsubDroppedPerSecond', label: 'dropped', color: '#e15759' },
    ],
  },
  {
    id: 'chart-pubsub-latency',
    title: 'End-to-end latency (last 10 s)',
    format: ms,
    series: percentiles('pubsub'),
  },
]

/** Why the node ended a stream (its `closed` event), for the user. */
const CLOSED_REASONS = {
  slow: 'this page fell messaging.subscriberQueueMessages behind (or its connection did not drain)',
  stopped: 'the node is stopping',
}

/**
 * Follow the event stream at `path` (undefined: none) while mounted: `on.open()` once the node took
 * the request, `on.message(json)` for each `message` event; again when `deps` change or after `retry()`.
 * `{ phase: 'off' | 'connecting' | 'open' | 'ended' | 'error', reason?, error?, retry }`.
 */
function useEventStream(path, on, deps = []) {
  const [state, setState] = useState({ phase: 'connecting' })
  const [attempt, setAttempt] = useState(0)
  const handlers = useRef(on)
  handlers.current = on
  useEffect(() => {
    if (path === undefined) {
      setState({ phase: 'off' })
      return undefined
    }
    const ac = new AbortController()
    let reason
    setState({ phase: 'connecting' })
    followEvents(path, {
      signal: ac.signal,
      onOpen: () => {
        setState({ phase: 'open' })
        handlers.current.open?.()
      },
      onEvent: (name, data) => {
        let body
        try {
          body = JSON.parse(data)
        } catch {
          return
        }
        if (name === 'closed') reason = body.reason
        else if (name === 'message') handlers.current.message(body)
      },
    }).then(
      (how) => {
        if (how === 'ended') setState({ phase: 'ended', reason })
      },
      (err) => {
        if (!ac.signal.aborted) setState({ phase: 'error', error: authHint(err) })
      },
    )
    return () => ac.abort()
  }, [path, attempt, ...deps])
  return { ...state, retry: () => setAttempt((a) => a + 1) }
}

/** What is kept of a message body: its size and a preview, decoded once on arrival. */
function bodyOf(base64) {
  const bytes = decodeBase64(base64)
  return { size: bytes.length, preview: previewBytes(bytes) }
}

/** A body preview as an element: text as it is, binary as hex; `…` when cut. */
function Body({ body }) {
  const p = body.preview
  return html`<code class=${`payload ${p.kind}`} title=${`${formatBytes(body.size)}${p.kind === 'binary' ? ', binary (hex)' : ''}`}>${p.text}${p.truncated ? '…' : ''}</code>`
}

/** One subscription's messages as they arrive, the newest first, at most TAIL_MAX. */
function Tail({ topic, onOpen, onStop }) {
  const [items, setItems] = useState([])
  const [received, setReceived] = useState(0)
  const stream = useEventStream(`/pubsub/${encodeURIComponent(topic)}`, {
    open: onOpen,
    message: (m) => {
      const { data, ...rest } = m
      setItems((old) => [{ ...rest, body: bodyOf(data) }, ...old].slice(0, TAIL_MAX))
      setReceived((n) => n + 1)
    },
  })
  const status =
    stream.phase === 'connecting'
      ? `Subscribing to “${topic}”…`
      : stream.phase === 'open'
        ? `Following “${topic}”: ${received} received`
        : stream.phase === 'ended'
          ? `The node ended the tail of “${topic}”${stream.reason === undefined ? '' : `: ${CLOSED_REASONS[stream.reason] ?? stream.reason}`}`
          : ''
  return html`<div class="tail-box">
    <p id="tail-status" role="status" data-phase=${stream.phase}>
      ${status}
      ${stream.phase === 'ended' || stream.phase === 'error' ? html` <button type="button" onClick=${stream.retry}>Reconnect</button>` : null}
      ${' '}<button type="button" onClick=${onStop}>Stop tail</button>
    </p>
    ${stream.phase === 'error' ? html`<${ErrorLine} error=${stream.error} />` : null}
    ${
      items.length === 0
        ? html`<p class="muted">No messages yet: each one published to “${topic}” from now on appears here.</p>`
        : html`<ol class="tail" id="tail" aria-label=${`Last ${TAIL_MAX} messages of ${topic}, newest first`}>
            ${items.map(
              (m) => html`<li key=${`${m.publisher}:${m.seq}`} data-seq=${m.seq}>
                <span class="tail-meta">
                  ${new Date(m.receivedAtMs).toLocaleTimeString()} · <code title=${m.publisher}>${shorten(m.publisher, 8, 6)}</code>
                  ${` #${m.seq} · ${formatNumber(Math.max(0, m.receivedAtMs - m.publishedAtMs))} ms`}
                </span>
                <${Body} body=${m.body} />
              </li>`,
            )}
          </ol>`
    }
  </div>`
}

/** Topics this node subscribes to (`GET /pubsub`), each with a button to tail it. */
function Topics({ topics, tailing, onTail }) {
  const list = topics.data?.topics ?? []
  return html`<${ErrorLine} error=${topics.error} />
    ${
      list.length === 0
        ? html`<p class="muted">${topics.data === undefined ? 'Loading…' : 'No topic subscribed: tail one below, or subscribe with nodus sub.'}</p>`
        : html`<div class="scroll"><table id="topics">
            <thead><tr>
              <th scope="col">Topic</th><th scope="col" class="num">Local subscriptions</th>
              <th scope="col" class="num">Peers subscribed</th><th scope="col">Actions</th>
            </tr></thead>
            <tbody>
              ${list.map(
                (
                  t,
                ) => html`<tr key=${t.topic} data-topic=${t.topic} class=${t.topic === tailing ? 'selected' : ''}>
                  <td><code>${t.topic}</code></td>
                  <td class="num">${t.subscriptions}</td>
                  <td class="num">${t.peers}</td>
                  <td class="actions">
                    <button type="button" disabled=${t.topic === tailing} onClick=${() => onTail(t.topic)}
                      aria-label=${`Tail ${t.topic}`}>Tail</button>
                  </td>
                </tr>`,
              )}
            </tbody>
          </table></div>`
    }`
}

/**
 * The inbox: how many messages it holds (exact below INBOX_PAGE) and the newest, from a poll of
 * `GET /messages` and the messages `GET /messages/stream` brings in meanwhile.
 */
function Inbox({ metrics, tokenVersion }) {
  const hasToken = token.get() !== ''
  const page = usePoll(
    async () => (hasToken ? await getJson(`/messages?limit=${INBOX_PAGE}`, { auth: true }) : undefined),
    10_000,
    [tokenVersion],
  )
  const [live, setLive] = useState([])
  const stream = useEventStream(
    hasToken ? '/messages/stream' : undefined,
    { message: (m) => setLive((old) => [m, ...old].slice(0, INBOX_SHOWN)) },
    [tokenVersion],
  )
  const listed = page.data?.messages ?? []
  const complete = listed.length < INBOX_PAGE
  // A full page holds the oldest messages: then only the streamed ones are known to be the newest.
  const newest = useMemo(() => {
    const byId = new Map()
    for (const m of [...(complete ? listed : []), ...live]) byId.set(m.id, m)
    return [...byId.values()]
      .sort((a, b) => b.receivedAtMs - a.receivedAtMs)
      .slice(0, INBOX_SHOWN)
      .map(({ body, ...rest }) => ({ ...rest, body: bodyOf(body) }))
  }, [page.data, live])
  const delivered =
    metrics === undefined ? undefined : sumSamples(metrics, 'nodus_messaging_direct_delivered_total')
  const sent = metrics === undefined ? undefined : sumSamples(metrics, 'nodus_messaging_direct_sent_total')
  return html`<div class="inbox" aria-labelledby="inbox-h">
    <h3 id="inbox-h">Direct messages</h3>
    <p id="inbox-count">
      ${
        !hasToken
          ? 'Paste the API token (top of the page) to see the inbox.'
          : page.data === undefined
            ? page.error === undefined
              ? 'Loading the inbox…'
              : ''
            : listed.length === 0
              ? 'The inbox is empty.'
              : complete
                ? `${listed.length} message${listed.length === 1 ? '' : 's'} in the inbox.`
                : `${INBOX_PAGE} or more messages in the inbox.`
      }
      ${` Since the node started: ${formatNumber(delivered ?? 0)} received, ${formatNumber(sent ?? 0)} sent.`}
    </p>
    <${ErrorLine} error=${page.error} />
    ${stream.phase === 'error' ? html`<${ErrorLine} error=${stream.error} />` : null}
    ${
      newest.length === 0
        ? null
        : html`<ol class="tail" id="inbox" aria-label="Newest inbox messages, newest first">
            ${newest.map(
              (m) => html`<li key=${m.id}>
                <span class="tail-meta">
                  ${new Date(m.receivedAtMs).toLocaleString()} · from <code title=${m.from}>${shorten(m.from, 8, 6)}</code>${` · ${m.via}`}
                </span>
                <${Body} body=${m.body} />
              </li>`,
            )}
          </ol>`
    }
  </div>`
}

/** The messages panel. @param props.scrape what live.js useMetrics returns */
export function MessagesPanel({ scrape, tokenVersion }) {
  const topics = usePoll(() => getJson('/pubsub'), 5000)
  const [tailing, setTailing] = useState(undefined)
  const [draft, setDraft] = useState('')
  const [formError, setFormError] = useState(undefined)
  const data = useMemo(() => chartData(CHARTS, scrape.points), [scrape.points])
  const last = scrape.points[scrape.points.length - 1]
  const m = scrape.metrics
  const total = (name) => (m === undefined ? '–' : formatNumber(sumSamples(m, name) ?? 0))
  const drops = (m?.get('nodus_messaging_dropped_total') ?? []).filter((s) => s.value > 0)

  const tail = (topic) => {
    if (token.get() === '') {
      setFormError('Paste the API token first (top of the page): a tail subscribes on the node.')
      return
    }
    setFormError(undefined)
    setTailing(topic)
  }
  const submit = (e) => {
    e.preventDefault()
    const t = draft.trim()
    if (t !== '') tail(t)
  }

  return html`<section class="card wide" id="messages" aria-labelledby="messages-h">
    <h2 id="messages-h">Messages</h2>
    <dl class="facts" id="pubsub-facts">
      <dt>Published</dt>
      <dd><span id="pubsub-published-total">${total('nodus_messaging_published_total')}</span>${` (${orDash(perSecond, last?.pubsubPublishedPerSecond)})`}</dd>
      <dt>Delivered here</dt>
      <dd><span id="pubsub-delivered-total">${total('nodus_messaging_delivered_total')}</span>${` (${orDash(perSecond, last?.pubsubDeliveredPerSecond)})`}</dd>
      <dt>Dropped</dt>
      <dd>
        <span id="pubsub-dropped-total">${total('nodus_messaging_dropped_total')}</span>${` (${orDash(perSecond, last?.pubsubDroppedPerSecond)})`}
        ${drops.length === 0 ? null : html`<span class="muted">${` ${drops.map((s) => `${s.labels.reason} ${formatNumber(s.value)}`).join(', ')}`}</span>`}
      </dd>
      <dt>Queued</dt><dd id="pubsub-queued">${formatNumber(last?.pubsubQueued)}</dd>
      <dt>Latency (last 10 s)</dt>
      <dd id="pubsub-latency">${`p50 ${orDash(ms, last?.pubsubP50Ms)} · p99 ${orDash(ms, last?.pubsubP99Ms)}`}</dd>
    </dl>
    <div class="charts">
      ${CHARTS.map(
        (c) =>
          html`<${Chart} key=${c.id} id=${c.id} title=${c.title} series=${c.series} data=${data[c.id]} format=${c.format} />`,
      )}
    </div>
    <h3>Topics</h3>
    <${Topics} topics=${topics} tailing=${tailing} onTail=${tail} />
    <h3>Live tail</h3>
    <form class="inline" onSubmit=${submit}>
      <label for="tail-topic">Topic to tail</label>
      <input id="tail-topic" type="text" spellcheck=${false} maxlength="4096" value=${draft}
        onInput=${(e) => setDraft(e.currentTarget.value)} />
      <button type="submit">Tail</button>
      <${ErrorLine} error=${formError} />
    </form>
    ${
      tailing === undefined
        ? null
        : html`<${Tail} key=${tailing} topic=${tailing} onStop=${() => setTailing(undefined)}
          onOpen=${topics.reload} />`
    }
    <${Inbox} metrics=${m} tokenVersion=${tokenVersion} />
  </section>`
}
