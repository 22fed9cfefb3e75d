/** Live charts: scrape `GET /metrics` every 2 s and chart rates and latency percentiles. */
import htm from 'htm'
import { h } from 'preact'
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { getText } from './api.js'
import { Chart, chartData } from './charts.js'
import { formatBytes, formatNumber } from './format.js'
import { createSampler, parseMetrics } from './prom.js'

const html = htm.bind(h)
const SCRAPE_INTERVAL_MS = 2000
/** Points kept per chart: 5 minutes at one scrape every 2 s. */
const MAX_POINTS = 150
const LATENCY_COLORS = ['#59a14f', '#f28e2b', '#e15759']

const bytesPerSecond = (v) => `${formatBytes(v)}/s`
export const perSecond = (v) => `${formatNumber(v)}/s`
export const ms = (v) => `${formatNumber(v)} ms`
/** The p50, p95 and p99 series of a latency histogram by its SamplePoint key, e.g. `api`. */
export const percentiles = (key) =>
  ['P50', 'P95', 'P99'].map((p, i) => ({
    field: `${key}${p}Ms`,
    label: p.toLowerCase(),
    color: LATENCY_COLORS[i],
  }))

/** What is charted: fields of prom.js's SamplePoint. */
const CHARTS = [
  {
    id: 'chart-throughput',
    title: 'File throughput',
    format: bytesPerSecond,
    series: [
      { field: 'putBytesPerSecond', label: 'put', color: '#4e79a7' },
      { field: 'getBytesPerSecond', label: 'get', color: '#f28e2b' },
    ],
  },
  {
    id: 'chart-shard-requests',
    title: 'Shard requests served',
    format: perSecond,
    series: [
      { field: 'shardOkPerSecond', label: 'ok', color: '#59a14f' },
      { field: 'shardFailedPerSecond', label: 'failed', color: '#e15759' },
    ],
  },
  {
    id: 'chart-shard-read',
    title: 'Shard read latency (last 10 s)',
    format: ms,
    series: percentiles('shardRead'),
  },
  {
    id: 'chart-shard-write',
    title: 'Shard write latency (last 10 s)',
    format: ms,
    series: percentiles('shardWrite'),
  },
  { id: 'chart-api', title: 'API request latency (last 10 s)', format: ms, series: percentiles('api') },
  {
    id: 'chart-eventloop',
    title: 'Event-loop lag',
    format: ms,
    series: [{ field: 'eventLoopLagP99Ms', label: 'p99', color: '#b07aa1' }],
  },
]

/**
 * Scrape `GET /metrics` every 2 s while mounted, for every panel that charts it (one scrape for all):
 * `{ points, metrics, error }`, the last 5 minutes of sample points (prom.js SamplePoint, oldest
 * first), the latest scrape parsed (prom.js Metrics; undefined before the first) and the last error.
 */
export function useMetrics() {
  const sampler = useRef(createSampler())
  const [state, setState] = useState({ points: [], metrics: undefined, error: undefined })

  useEffect(() => {
    let stopped = false
    let timer
    const tick = async () => {
      try {
        const metrics = parseMetrics(await getText('/metrics'))
        const point = sampler.current(metrics, Date.now() / 1000)
        if (!stopped) {
          setState((old) => ({
            points: [...old.points, point].slice(-MAX_POINTS),
            metrics,
            error: undefined,
          }))
        }
      } catch (err) {
        if (!stopped) setState((old) => ({ ...old, error: `Cannot read /metrics: ${err.message}` }))
      }
      if (!stopped) timer = setTimeout(tick, SCRAPE_INTERVAL_MS)
    }
    void tick()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [])
  return state
}

/** @param props.scrape what {@link useMetrics} returns */
export function LivePanel({ scrape }) {
  const data = useMemo(() => chartData(CHARTS, scrape.points), [scrape.points])
  const error = scrape.error

  return html`<section class="card wide" id="live" aria-labelledby="live-h">
    <h2 id="live-h">Live</h2>
    <p class="muted">From <a href="/metrics">/metrics</a>, every ${SCRAPE_INTERVAL_MS / 1000} s; the last 5 minutes.</p>
    ${error === undefined ? null : html`<p class="error" role="alert">${error}</p>`}
    <div class="charts">
      ${CHARTS.map(
        (c) =>
          html`<${Chart} key=${c.id} id=${c.id} title=${c.title} series=${c.series} data=${data[c.id]} format=${c.format} />`,
      )}
    </div>
  </section>`
}
