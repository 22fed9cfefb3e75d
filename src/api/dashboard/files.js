/** Files: upload with progress, the pin list with downloads, and the shard map of one file. */
import htm from 'htm'
import { h } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { authHint, getJson, token, uploadFile, usePoll } from './api.js'
import { formatBytes, formatTime, shorten } from './format.js'
import { ErrorLine } from './panels.js'

const html = htm.bind(h)
/** Segments drawn in the shard map at most; a note says how many more there are. */
const MAP_MAX_SEGMENTS = 256
/** Holder colours, in order of first appearance; later holders get hues from their index. */
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#e15759',
  '#76b7b2',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
]

function UploadForm({ onUploaded }) {
  const input = useRef(null)
  const job = useRef(undefined)
  const [state, setState] = useState({ phase: 'idle' })
  const submit = async (e) => {
    e.preventDefault()
    const file = input.current?.files?.[0]
    if (file === undefined) {
      setState({ phase: 'error', error: 'Choose a file first.' })
      return
    }
    if (token.get() === '') {
      setState({ phase: 'error', error: 'Paste the API token first (top of the page): uploads need it.' })
      return
    }
    const t0 = performance.now()
    const upload = uploadFile(file, (sent, total) => {
      const seconds = (performance.now() - t0) / 1000
      setState({
        phase: sent < total ? 'sending' : 'storing',
        sent,
        total,
        rate: seconds > 0 ? sent / seconds : 0,
      })
    })
    job.current = upload
    setState({ phase: 'sending', sent: 0, total: file.size, rate: 0 })
    try {
      const r = await upload.done
      setState({ phase: 'done', result: r, name: file.name, seconds: (performance.now() - t0) / 1000 })
      if (input.current !== null) input.current.value = ''
      onUploaded(r.cid)
    } catch (err) {
      setState({ phase: 'error', error: authHint(err) })
    } finally {
      job.current = undefined
    }
  }
  const busy = state.phase === 'sending' || state.phase === 'storing'
  return html`<form class="upload" onSubmit=${submit} aria-labelledby="upload-h">
    <h3 id="upload-h">Upload a file</h3>
    <label for="upload-file">File</label>
    <input id="upload-file" type="file" ref=${input} disabled=${busy} />
    <button type="submit" disabled=${busy}>Upload</button>
    ${busy ? html`<button type="button" onClick=${() => job.current?.abort()}>Cancel</button>` : null}
    ${
      busy
        ? html`<div class="progress" role="status">
            <progress id="upload-progress" max=${state.total || 1} value=${state.sent}
              aria-label="Upload progress"></progress>
            <span>${
              state.phase === 'sending'
                ? `Sending ${formatBytes(state.sent)} of ${formatBytes(state.total)} (${Math.floor((100 * state.sent) / (state.total || 1))}%), ${formatBytes(state.rate)}/s`
                : `Sent ${formatBytes(state.total)}; erasure-coding and placing shards…`
            }</span>
          </div>`
        : null
    }
    ${
      state.phase === 'done'
        ? html`<p role="status" class="ok" id="upload-result">
            ${`Stored ${state.name} (${formatBytes(state.result.bytes)}, ${state.result.segments} segments, k=${state.result.k} m=${state.result.m}) in ${state.seconds.toFixed(1)} s as `}
            <code>${state.result.cid}</code>
          </p>`
        : null
    }
    ${state.phase === 'error' ? html`<${ErrorLine} error=${state.error} />` : null}
  </form>`
}

function holderColor(index) {
  return PALETTE[index] ?? `hsl(${(index * 137.5) % 360} 55% 55%)`
}

/** Segments × shards grid of one manifest, each cell coloured by the peer holding that shard. */
export function ShardMap({ cid, selfPeerId, onClose }) {
  const manifest = usePoll(() => getJson(`/files/${encodeURIComponent(cid)}/manifest`), 0, [cid])
  const section = useRef(null)
  useEffect(() => section.current?.scrollIntoView({ block: 'start' }), [])
  const m = manifest.data
  const holders = new Map()
  if (m !== undefined) {
    for (const s of m.segments) {
      for (const sh of s.shards) for (const p of sh.holders) if (!holders.has(p)) holders.set(p, holders.size)
    }
  }
  const letter = (i) => (i < 26 ? String.fromCharCode(65 + i) : `P${i}`)
  const shown = m === undefined ? [] : m.segments.slice(0, MAP_MAX_SEGMENTS)
  return html`<section class="card wide" id="shard-map" aria-labelledby="map-h" ref=${section}>
    <h2 id="map-h">Shard map <small><code title=${cid}>${shorten(cid, 14, 8)}</code></small></h2>
    <button type="button" class="close" onClick=${onClose}>Close shard map</button>
    <${ErrorLine} error=${manifest.error} />
    ${
      m === undefined
        ? manifest.error === undefined
          ? html`<p>Loading the manifest…</p>`
          : null
        : html`<p>
              ${`${m.name ?? 'unnamed'}: ${formatBytes(m.fileSize)} in ${m.segments.length} segments of up to ${formatBytes(m.segmentSize)}; each segment is ${m.k} data + ${m.m} parity shards (any ${m.k} rebuild it). Uploaded by `}
              <code title=${m.uploader}>${shorten(m.uploader, 12, 8)}</code>${`, ${formatTime(m.createdAt)}.`}
            </p>
            <div class="scroll map-scroll">
              <table class="shard-grid">
                <caption class="sr-only">Holder of each shard, by segment (rows) and shard index (columns)</caption>
                <thead><tr>
                  <th scope="col">Segment</th>
                  ${Array.from({ length: m.k + m.m }, (_, i) => html`<th scope="col" key=${i} title=${i < m.k ? 'data shard' : 'parity shard'}>${i < m.k ? `D${i}` : `P${i - m.k}`}</th>`)}
                </tr></thead>
                <tbody>
                  ${shown.map(
                    (s, si) => html`<tr key=${si}>
                      <th scope="row">${si}</th>
                      ${s.shards.map((sh, i) => {
                        const first = sh.holders[0]
                        const idx = first === undefined ? -1 : (holders.get(first) ?? -1)
                        const label =
                          idx < 0
                            ? '∅'
                            : sh.holders.length > 1
                              ? `${letter(idx)}+${sh.holders.length - 1}`
                              : letter(idx)
                        return html`<td key=${i} class=${idx < 0 ? 'shard missing' : 'shard'}
                          style=${idx < 0 ? undefined : { backgroundColor: holderColor(idx) }}
                          title=${`segment ${si}, shard ${i} (${formatBytes(s.shardSize)}) ${sh.cid}\nheld by: ${sh.holders.join(', ') || 'nobody'}`}>${label}</td>`
                      })}
                    </tr>`,
                  )}
                </tbody>
              </table>
            </div>
            ${m.segments.length > shown.length ? html`<p class="muted">Showing the first ${shown.length} of ${m.segments.length} segments.</p>` : null}
            <h3>Holders</h3>
            <ul class="legend">
              ${[...holders.entries()].map(
                ([peer, i]) => html`<li key=${peer}>
                  <span class="swatch" style=${{ backgroundColor: holderColor(i) }}>${letter(i)}</span>
                  <code title=${peer}>${shorten(peer, 12, 8)}</code>${peer === selfPeerId ? ' (this node)' : ''}
                </li>`,
              )}
            </ul>`
    }
  </section>`
}

/** Pins put through this node, 100 at a time, with download and shard-map actions. */
export function FilesPanel({ selected, onSelect }) {
  const [after, setAfter] = useState([])
  const cursor = after[after.length - 1]
  const files = usePoll(
    () => getJson(`/files?limit=100${cursor === undefined ? '' : `&after=${encodeURIComponent(cursor)}`}`),
    10_000,
    [cursor],
  )
  const list = files.data?.files ?? []
  return html`<section class="card wide" id="files" aria-labelledby="files-h">
    <h2 id="files-h">Files</h2>
    <${UploadForm} onUploaded=${() => files.reload()} />
    <${ErrorLine} error=${files.error} />
    ${
      list.length === 0
        ? html`<p class="muted">${files.data === undefined ? 'Loading…' : 'No files pinned on this node yet: upload one above.'}</p>`
        : html`<div class="scroll"><table class="files">
            <thead><tr>
              <th scope="col">Name</th><th scope="col">CID</th><th scope="col" class="num">Size</th>
              <th scope="col" class="num">Segments</th><th scope="col">k + m</th><th scope="col">Stored</th>
              <th scope="col">Expires</th><th scope="col">Actions</th>
            </tr></thead>
            <tbody>
              ${list.map(
                (f) => html`<tr key=${f.cid} data-cid=${f.cid} class=${f.cid === selected ? 'selected' : ''}>
                  <td>${f.name ?? html`<span class="muted">unnamed</span>`}</td>
                  <td><code title=${f.cid}>${shorten(f.cid, 14, 8)}</code></td>
                  <td class="num">${formatBytes(f.bytes)}</td>
                  <td class="num">${f.segments}</td>
                  <td>${f.k} + ${f.m}</td>
                  <td>${formatTime(f.createdAt)}</td>
                  <td>${f.expiresAt === null ? 'never' : formatTime(f.expiresAt)}</td>
                  <td class="actions">
                    <a class="button" href=${`/files/${encodeURIComponent(f.cid)}`} download=${f.name ?? `${f.cid}.bin`}
                      aria-label=${`Download ${f.name ?? f.cid}`}>Download</a>
                    <button type="button" onClick=${() => onSelect(f.cid)} aria-label=${`Shard map of ${f.name ?? f.cid}`}>Shard map</button>
                  </td>
                </tr>`,
              )}
            </tbody>
          </table></div>`
    }
    <div class="pager">
      ${after.length > 0 ? html`<button type="button" onClick=${() => setAfter(after.slice(0, -1))}>Previous page</button>` : null}
      ${list.length === 100 ? html`<button type="button" onClick=${() => setAfter([...after, list[list.length - 1].cid])}>Next page</button>` : null}
    </div>
  </section>`
}
