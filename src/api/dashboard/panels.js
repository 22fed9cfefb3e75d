/** The node's state: identity and status, storage, peers, and the API token form. */
import htm from 'htm'
import { h } from 'preact'
import { useState } from 'preact/hooks'
import { authHint, getJson, postJson, token, usePoll } from './api.js'
import { formatBytes, formatNumber, formatSeconds, formatTime, shorten } from './format.js'

const html = htm.bind(h)

export function ErrorLine({ error }) {
  return error === undefined ? null : html`<p class="error" role="alert">${error}</p>`
}

/** Paste the API token (from `<data-dir>/api-token`); kept in sessionStorage for this tab. */
export function TokenForm({ onChange }) {
  const [value, setValue] = useState('')
  const [saved, setSaved] = useState(token.get() !== '')
  const save = (e) => {
    e.preventDefault()
    const t = value.trim()
    if (t === '') return
    token.set(t)
    setValue('')
    setSaved(true)
    onChange?.()
  }
  const forget = () => {
    token.clear()
    setSaved(false)
    onChange?.()
  }
  return html`<form class="token" onSubmit=${save}>
    <label for="api-token">API token</label>
    <input
      id="api-token"
      type="password"
      autocomplete="off"
      spellcheck=${false}
      placeholder=${saved ? 'saved for this tab' : 'paste <data-dir>/api-token'}
      value=${value}
      onInput=${(e) => setValue(e.currentTarget.value)}
    />
    <button type="submit">Use token</button>
    ${saved ? html`<button type="button" onClick=${forget}>Forget token</button>` : null}
    <span class="token-state" role="status">${saved ? 'Token set (this tab only)' : 'No token: uploads need one'}</span>
  </form>`
}

export function NodePanel({ info, status }) {
  return html`<section class="card" aria-labelledby="node-h">
    <h2 id="node-h">Node</h2>
    ${info.error === undefined ? null : html`<${ErrorLine} error=${info.error} />`}
    ${
      info.data === undefined
        ? html`<p>Loading…</p>`
        : html`<dl class="facts">
            <dt>Peer ID</dt><dd><code class="id">${info.data.peerId}</code></dd>
            <dt>DID</dt><dd><code class="id">${info.data.did}</code></dd>
            <dt>Version</dt><dd>nodus ${info.data.version} on Node.js ${info.data.node}</dd>
            <dt>Listening on</dt>
            <dd>${info.data.multiaddrs.map((a) => html`<code class="id" key=${a}>${a}</code>`)}</dd>
            ${
              status.data === undefined
                ? null
                : html`<dt>Uptime</dt><dd>${formatSeconds(status.data.uptimeSeconds)}</dd>
                    <dt>Shard requests</dt>
                    <dd>${formatNumber(status.data.shardRequestsServed)} served, ${formatNumber(status.data.shardRequestsInFlight)} in flight</dd>
                    <dt>Provide queue</dt><dd>${formatNumber(status.data.provideQueueDepth)} records</dd>
                    <dt>Memory (RSS)</dt><dd>${formatBytes(status.data.rssBytes)}</dd>`
            }
          </dl>`
    }
  </section>`
}

export function StoragePanel({ usage, status }) {
  const u = usage.data
  const pct = u === undefined || u.capacityBytes <= 0 ? 0 : (100 * u.bytes) / u.capacityBytes
  return html`<section class="card" id="storage" aria-labelledby="storage-h">
    <h2 id="storage-h">Storage</h2>
    <${ErrorLine} error=${usage.error} />
    ${
      u === undefined
        ? html`<p>Loading…</p>`
        : html`<p class="big" id="usage-text">
              <strong>${formatBytes(u.bytes)}</strong>
              ${` used of ${formatBytes(u.capacityBytes)} (${pct < 0.01 && u.bytes > 0 ? '<0.01' : pct.toFixed(2)}%)`}
            </p>
            <meter id="usage-meter" min="0" max=${u.capacityBytes} value=${u.bytes} low=${u.capacityBytes * 0.75}
              high=${u.capacityBytes * 0.9} optimum="0" aria-label="Storage used"></meter>
            <dl class="facts">
              <dt>Shards stored</dt><dd id="usage-shards">${formatNumber(u.shards)}</dd>
              <dt>Free</dt><dd>${formatBytes(u.freeBytes)}</dd>
              ${
                status.data === undefined
                  ? null
                  : html`<dt>Peers</dt><dd>${status.data.peers} (${status.data.connections} connections)</dd>`
              }
            </dl>`
    }
  </section>`
}

function ConnectForm({ onConnected }) {
  const [addr, setAddr] = useState('')
  const [state, setState] = useState({ busy: false, message: undefined, error: undefined })
  const submit = async (e) => {
    e.preventDefault()
    if (addr.trim() === '') return
    if (token.get() === '') {
      setState({ busy: false, message: undefined, error: 'Paste the API token first (top of the page).' })
      return
    }
    setState({ busy: true, message: undefined, error: undefined })
    try {
      const r = await postJson('/network/connect', { multiaddr: addr.trim() })
      setState({ busy: false, message: `Connected to ${r.peerId}`, error: undefined })
      setAddr('')
      onConnected()
    } catch (err) {
      setState({ busy: false, message: undefined, error: authHint(err) })
    }
  }
  return html`<form class="inline" onSubmit=${submit}>
    <label for="connect-addr">Connect to a peer (multiaddr)</label>
    <input id="connect-addr" type="text" spellcheck=${false} placeholder="/ip4/…/tcp/…/p2p/…" value=${addr}
      onInput=${(e) => setAddr(e.currentTarget.value)} />
    <button type="submit" disabled=${state.busy}>${state.busy ? 'Connecting…' : 'Connect'}</button>
    ${state.message === undefined ? null : html`<span role="status">${state.message}</span>`}
    <${ErrorLine} error=${state.error} />
  </form>`
}

/** Connected peers; `trust` and `latencyMs` columns appear once the API reports them. */
export function PeersPanel() {
  const peers = usePoll(() => getJson('/network/peers'), 5000)
  const list = peers.data?.peers ?? []
  const hasTrust = list.some((p) => p.trust !== undefined && p.trust !== null)
  const hasLatency = list.some((p) => p.latencyMs !== undefined && p.latencyMs !== null)
  return html`<section class="card wide" id="peers" aria-labelledby="peers-h">
    <h2 id="peers-h">Peers <span class="count">${peers.data === undefined ? '' : list.length}</span></h2>
    <${ErrorLine} error=${peers.error} />
    ${
      list.length === 0
        ? html`<p class="muted">${peers.data === undefined ? 'Loading…' : 'No peers connected: this node runs alone. Start it with --bootstrap, or connect below.'}</p>`
        : html`<div class="scroll"><table>
            <thead><tr>
              <th scope="col">Peer ID</th><th scope="col">Address</th><th scope="col">Direction</th>
              <th scope="col">Transport</th>
              <th scope="col">Connected since</th>
              ${hasTrust ? html`<th scope="col" class="num">Trust</th>` : null}
              ${hasLatency ? html`<th scope="col" class="num">Latency</th>` : null}
            </tr></thead>
            <tbody>
              ${list.map(
                (p) => html`<tr key=${`${p.peerId} ${p.addr ?? p.address}`}>
                  <td><code title=${p.peerId}>${shorten(p.peerId, 12, 8)}</code></td>
                  <td><code>${p.addr ?? p.address ?? '–'}</code></td>
                  <td>${p.direction ?? '–'}</td>
                  <td title=${p.relayed === true ? 'through a circuit relay (limited: no shard transfers)' : 'direct connection'}>${p.transport ?? '–'}${p.relayed === true ? ' (relayed)' : p.relayed === false ? ' (direct)' : ''}</td>
                  <td>${formatTime(p.openedAt)}</td>
                  ${hasTrust ? html`<td class="num">${p.trust === undefined || p.trust === null ? '–' : formatNumber(p.trust)}</td>` : null}
                  ${hasLatency ? html`<td class="num">${p.latencyMs === undefined || p.latencyMs === null ? '–' : `${formatNumber(p.latencyMs)} ms`}</td>` : null}
                </tr>`,
              )}
            </tbody>
          </table></div>`
    }
    <${ConnectForm} onConnected=${peers.reload} />
  </section>`
}
