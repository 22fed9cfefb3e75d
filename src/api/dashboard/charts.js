/** A live uPlot line chart as a preact component; the page keeps the data and passes it in. */
import htm from 'htm'
import { h } from 'preact'
import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'

const html = htm.bind(h)
const HEIGHT_PX = 170

/**
 * @param props.title caption
 * @param props.series `[{ label, color }]`, one per y array in `data`
 * @param props.data uPlot aligned data: `[times (s since epoch), ...one array per series]`
 * @param props.format formats a y value with its unit (axis ticks, legend, latest values)
 */
export function Chart({ id, title, series, data, format }) {
  const box = useRef(null)
  const plot = useRef(null)

  useEffect(() => {
    const el = box.current
    const width = () => Math.max(el.clientWidth, 240)
    const u = new uPlot(
      {
        width: width(),
        height: HEIGHT_PX,
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            points: { show: false },
            value: (_u, v) => (v === null || v === undefined ? '–' : format(v)),
          })),
        ],
        axes: [
          { stroke: '#888', grid: { stroke: 'rgba(128,128,128,0.15)' } },
          {
            stroke: '#888',
            size: 70,
            grid: { stroke: 'rgba(128,128,128,0.15)' },
            values: (_u, ticks) => ticks.map(format),
          },
        ],
        scales: {
          x: { time: true },
          y: { range: (_u, _min, max) => [0, max !== null && max > 0 ? max * 1.1 : 1] },
        },
        cursor: { drag: { x: false, y: false } },
      },
      data,
      el,
    )
    plot.current = u
    const ro = new ResizeObserver(() => u.setSize({ width: width(), height: HEIGHT_PX }))
    ro.observe(el)
    return () => {
      ro.disconnect()
      u.destroy()
      plot.current = null
    }
  }, [])

  useEffect(() => {
    plot.current?.setData(data)
  }, [data])

  const values = series.map((_s, i) => {
    const ys = data[i + 1] ?? []
    return ys.length > 0 ? ys[ys.length - 1] : null
  })
  const latest = values.every((v) => v === null || v === undefined)
    ? [data[0]?.length > 0 ? 'no observations now' : 'waiting for data']
    : series.map(
        (s, i) => `${s.label} ${values[i] === null || values[i] === undefined ? '–' : format(values[i])}`,
      )
  return html`<figure class="chart" id=${id} data-points=${data[0]?.length ?? 0}>
    <figcaption>
      <span class="chart-title">${title}</span>
      <span class="chart-latest" aria-live="off">${latest.join(' · ')}</span>
    </figcaption>
    <div class="chart-plot" ref=${box} role="img" aria-label=${`${title}: ${latest.join(', ')}`}></div>
  </figure>`
}

/**
 * uPlot aligned data for each chart from a list of sample points (prom.js SamplePoint, oldest first):
 * `{ [chart.id]: [times, ...one array per series] }`, a series' values read from `point[series.field]`.
 */
export function chartData(charts, points) {
  const times = points.map((p) => p.t)
  return Object.fromEntries(
    charts.map((c) => [c.id, [times, ...c.series.map((s) => points.map((p) => p[s.field]))]]),
  )
}
