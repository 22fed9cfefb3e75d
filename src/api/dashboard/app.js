/**
 * The nodus dashboard: one page, plain ES modules, preact + htm (no build step), uPlot for charts.
 * Everything it shows comes from this node's HTTP API (docs/API.md).
 */
import htm from 'htm'
import { h, render } from 'preact'
import { useState } from 'preact/hooks'
import { getJson, usePoll } from './api.js'
import { FilesPanel, ShardMap } from './files.js'
import { shorten } from './format.js'
import { KvPanel } from './kv.js'
import { LivePanel, useMetrics } from './live.js'
import { MessagesPanel } from './messages.js'
import { NodePanel, PeersPanel, StoragePanel, TokenForm } from './panels.js'

const html = htm.bind(h)

function App() {
  const info = usePoll(() => getJson('/system/info'), 30_000)
  const status = usePoll(() => getJson('/system/status'), 5000)
  const usage = usePoll(() => getJson('/storage/usage'), 5000)
  const [selected, setSelected] = useState(undefined)
  const [tokenVersion, setTokenVersion] = useState(0)
  const scrape = useMetrics()
  const peerId = info.data?.peerId
  return html`
    <header class="top">
      <h1>nodus <span class="muted">${peerId === undefined ? '' : shorten(peerId, 12, 6)}</span></h1>
      <${TokenForm} onChange=${() => setTokenVersion((v) => v + 1)} />
    </header>
    <main class="grid">
      <${StoragePanel} usage=${usage} status=${status} />
      <${NodePanel} info=${info} status=${status} />
      <${FilesPanel} selected=${selected} onSelect=${(cid) => setSelected(cid)} />
      ${
        selected === undefined
          ? null
          : html`<${ShardMap} key=${selected} cid=${selected} selfPeerId=${peerId} onClose=${() => setSelected(undefined)} />`
      }
      <${PeersPanel} />
      <${LivePanel} scrape=${scrape} />
      <${MessagesPanel} scrape=${scrape} tokenVersion=${tokenVersion} />
      <${KvPanel} scrape=${scrape} />
    </main>
    <footer class="muted">
      nodus ${info.data?.version ?? ''} · API: <a href="/openapi.json">/openapi.json</a> ·
      metrics: <a href="/metrics">/metrics</a>
    </footer>`
}

const root = document.getElementById('app')
root.textContent = ''
render(html`<${App} />`, root)
