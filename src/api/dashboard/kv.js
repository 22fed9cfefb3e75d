/**
 * KV: the databases this node hosts (`GET /kv`), each with the ops it holds and its last sync
 * (`GET /kv/:db`: peer, when, need/have/fetched/pushed), a key lookup (`GET /kv/:db/:key`), and the kv
 * rates from `/metrics` (ops applied by source, refused by reason, syncs). Keys and values are written
 * by whoever holds a grant: they are shown as text nodes only (preact escapes every interpolated
 * string), cut at VALUE_MAX_CHARS.
 */
import htm from 'htm'
import { h } from 'preact'
import { useMemo, useState } from 'preact/hooks'
import { getJson, usePoll } from './api.js'
import { Chart, chartData } from './charts.js'
import { formatNumber, formatTime, orDash, shorten } from './format.js'
import { perSecond } from './live.js'
import { ErrorLine } from './panels.js'
import { sumSamples } from './prom.js'

const html = htm.bind(h)
/** Databases whose status is read per poll (a node hosts at most kv.maxHostedDbs). */
const STATUS_MAX = 50
/** Characters of a looked-up value shown. */
const VALUE_MAX_CHARS = 20_000

const CHARTS = [
  {
    id: 'chart-kv-ops',
    title: 'KV operations (whole node)',
    format: perSecond,
    series: [
      { field: 'kvAppliedLocalPerSecond', label: 'applied: local', color: '#4e79a7' },
      { field: 'kvAppliedGossipPerSecond', label: 'applied: gossip', color: '#59a14f' },
      { field: 'kvAppliedSyncPerSecond', label: 'applied: sync', color: '#76b7b2' },
      { field: 'kvRefusedPerSecond', label: 'refused', color: '#e15759' },
    ],
  },
  {
    id: 'chart-kv-syncs',
    title: 'KV sync sessions started here',
    format: perSecond,
    series: [
      { field: 'kvSyncsPerSecond', label: 'all', color: '#f28e2b' },
      { field: 'kvSyncsFailedPerSecond', label: 'failed', color: '#e15759' },
    ],
  },
]

const dbPath = (db) => `/kv/${encodeURIComponent(db)}`

/** The hosted databases and, for the first STATUS_MAX, their status. */
async function loadDatabases() {
  const { databases } = await getJson('/kv')
  const statuses = await Promise.all(databases.slice(0, STATUS_MAX).map((db) => getJson(dbPath(db))))
  return { count: databases.length, statuses }
}

/** A last sync as text: who, when, and what moved. */
function LastSync({ sync }) {
  if (sync === undefined) return html`<span class="muted">never</span>`
  return html`<span>
    <code title=${sync.peer}>${shorten(sync.peer, 8, 6)}</code>${` · ${formatTime(sync.atMs)}`}
    ${
      sync.error === undefined
        ? ` · need ${sync.need}, have ${sync.have}, fetched ${sync.fetched}, pushed ${sync.pushed}`
        : html` · <span class="error">${sync.error}</span>`
    }
  </span>`
}

function Databases({ dbs, onPick }) {
  const list = dbs.data?.statuses ?? []
  return html`<${ErrorLine} error=${dbs.error} />
    ${
      list.length === 0
        ? html`<p class="muted">${dbs.data === undefined ? 'Loading…' : 'No database hosted here: create one with nodus kv create, or host one with nodus kv host DB.'}</p>`
        : html`<div class="scroll"><table id="kv-dbs">
            <thead><tr>
              <th scope="col">Database</th><th scope="col">Hosted</th><th scope="col" class="num">Ops</th>
              <th scope="col">Last sync</th><th scope="col">Actions</th>
            </tr></thead>
            <tbody>
              ${list.map(
                (s) => html`<tr key=${s.db} data-db=${s.db}>
                  <td><code title=${s.db}>${shorten(s.db, 24, 8)}</code></td>
                  <td>${s.hosted ? 'yes' : 'no'}</td>
                  <td class="num" data-ops=${s.ops}>${formatNumber(s.ops)}</td>
                  <td><${LastSync} sync=${s.lastSync} /></td>
                  <td class="actions"><button type="button" onClick=${() => onPick(s.db)}
                    aria-label=${`Look up a key in ${s.db}`}>Look up</button></td>
                </tr>`,
              )}
            </tbody>
          </table></div>
          ${dbs.data.count > list.length ? html`<p class="muted">${`The first ${list.length} of ${dbs.data.count} databases.`}</p>` : null}`
    }`
}

/** A looked-up value as text: a string as it is, anything else as indented JSON. */
function valueText(value) {
  const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2)
  return text.length > VALUE_MAX_CHARS ? `${text.slice(0, VALUE_MAX_CHARS)}…` : text
}

/** The key lookup form and its answer. */
function Lookup({ db, onDb, databases }) {
  const [key, setKey] = useState('')
  const [answer, setAnswer] = useState(undefined)
  const [error, setError] = useState(undefined)
  const [busy, setBusy] = useState(false)
  const submit = async (e) => {
    e.preventDefault()
    const d = db.trim()
    if (d === '' || key === '') {
      setError('Give a database and a key.')
      return
    }
    setBusy(true)
    setError(undefined)
    try {
      setAnswer(await getJson(`${dbPath(d)}/${encodeURIComponent(key)}`))
    } catch (err) {
      setAnswer(undefined)
      setError(err.message)
    } finally {
      setBusy(false)
    }
  }
  return html`<form class="inline" id="kv-lookup" onSubmit=${submit}>
      <label for="kv-db">Database</label>
      <input id="kv-db" type="text" list="kv-db-list" spellcheck=${false} maxlength="128" size="40" value=${db}
        onInput=${(e) => onDb(e.currentTarget.value)} />
      <datalist id="kv-db-list">${databases.map((d) => html`<option key=${d} value=${d} />`)}</datalist>
      <label for="kv-key">Key</label>
      <input id="kv-key" type="text" spellcheck=${false} maxlength="1024" value=${key}
        onInput=${(e) => setKey(e.currentTarget.value)} />
      <button type="submit" disabled=${busy}>Look up</button>
      <${ErrorLine} error=${error} />
    </form>
    ${
      answer === undefined
        ? null
        : html`<div id="kv-value" data-type=${answer.type}>
            <p class="muted">${`${answer.key} in ${shorten(answer.db, 24, 8)}: ${answer.type}`}</p>
            <pre><code class="payload text">${valueText(answer.value)}</code></pre>
          </div>`
    }`
}

/** The kv panel. @param props.scrape what live.js useMetrics returns */
export function KvPanel({ scrape }) {
  const dbs = usePoll(loadDatabases, 5000)
  const [db, setDb] = useState('')
  const data = useMemo(() => chartData(CHARTS, scrape.points), [scrape.points])
  const last = scrape.points[scrape.points.length - 1]
  const m = scrape.metrics
  const total = (name, filter) => (m === undefined ? '–' : formatNumber(sumSamples(m, name, filter) ?? 0))
  const refusals = (m?.get('nodus_kv_ops_refused_total') ?? []).filter((s) => s.value > 0)
  const applied =
    (last?.kvAppliedLocalPerSecond ?? 0) +
    (last?.kvAppliedGossipPerSecond ?? 0) +
    (last?.kvAppliedSyncPerSecond ?? 0)
  return html`<section class="card wide" id="kv" aria-labelledby="kv-h">
    <h2 id="kv-h">KV <span class="count">${dbs.data === undefined ? '' : dbs.data.count}</span></h2>
    <dl class="facts" id="kv-facts">
      <dt>Ops applied</dt>
      <dd>
        <span id="kv-applied-total">${total('nodus_kv_ops_applied_total')}</span>${` (${last === undefined || last.kvAppliedLocalPerSecond === null ? '–' : perSecond(applied)})`}
        <span class="muted">${` local ${total('nodus_kv_ops_applied_total', { source: 'local' })}, gossip ${total('nodus_kv_ops_applied_total', { source: 'gossip' })}, sync ${total('nodus_kv_ops_applied_total', { source: 'sync' })}`}</span>
      </dd>
      <dt>Refused</dt>
      <dd>
        <span id="kv-refused-total">${total('nodus_kv_ops_refused_total')}</span>${` (${orDash(perSecond, last?.kvRefusedPerSecond)})`}
        ${refusals.length === 0 ? null : html`<span class="muted" id="kv-refused-reasons">${` ${refusals.map((s) => `${s.labels.reason} ${formatNumber(s.value)}`).join(', ')}`}</span>`}
      </dd>
      <dt>Syncs started</dt>
      <dd>
        <span id="kv-syncs-total">${total('nodus_kv_syncs_total')}</span>${` (${orDash(perSecond, last?.kvSyncsPerSecond)}), failed ${total('nodus_kv_syncs_total', { result: 'failed' })}`}
      </dd>
    </dl>
    <div class="charts">
      ${CHARTS.map(
        (c) =>
          html`<${Chart} key=${c.id} id=${c.id} title=${c.title} series=${c.series} data=${data[c.id]} format=${c.format} />`,
      )}
    </div>
    <h3>Databases</h3>
    <${Databases} dbs=${dbs} onPick=${setDb} />
    <h3>Key lookup</h3>
    <${Lookup} db=${db} onDb=${setDb} databases=${(dbs.data?.statuses ?? []).map((s) => s.db)} />
  </section>`
}
