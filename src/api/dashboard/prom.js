/**
 * Prometheus text exposition, parsed in the browser, and what the dashboard derives from it: counter
 * rates and histogram quantiles over a window (the same interpolation as PromQL's histogram_quantile).
 * Pure functions, no DOM: test/e2e/dashboard.test.ts runs them in Node too. Types: prom.d.ts.
 */

/** Parse one sample value: a float, `+Inf`, `-Inf` or `NaN`. */
function parseValue(s) {
  if (s === undefined || s === '') return undefined
  if (s === '+Inf' || s === 'Inf') return Number.POSITIVE_INFINITY
  if (s === '-Inf') return Number.NEGATIVE_INFINITY
  if (s === 'NaN') return Number.NaN
  const v = Number(s)
  return Number.isNaN(v) ? undefined : v
}

/** Parse one sample line `name{a="x",b="y"} value [timestamp]`; undefined if malformed. */
function parseLine(line) {
  let i = 0
  while (i < line.length && line[i] !== '{' && line[i] !== ' ' && line[i] !== '\t') i++
  const name = line.slice(0, i)
  if (name === '') return undefined
  const labels = {}
  if (line[i] === '{') {
    i++
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++
      if (i >= line.length) return undefined
      if (line[i] === '}') {
        i++
        break
      }
      const eq = line.indexOf('=', i)
      if (eq < 0) return undefined
      const key = line.slice(i, eq).trim()
      i = eq + 1
      if (line[i] !== '"') return undefined
      i++
      let value = ''
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\') {
          const c = line[i + 1]
          value += c === 'n' ? '\n' : (c ?? '')
          i += 2
        } else {
          value += line[i]
          i++
        }
      }
      if (i >= line.length) return undefined
      i++
      labels[key] = value
    }
  }
  const value = parseValue(line.slice(i).trim().split(/\s+/)[0])
  if (value === undefined) return undefined
  return { name, labels, value }
}

/** Parse a whole exposition into a Map from sample name to its samples; comments are skipped. */
export function parseMetrics(text) {
  const out = new Map()
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const s = parseLine(line)
    if (s === undefined) continue
    let list = out.get(s.name)
    if (list === undefined) {
      list = []
      out.set(s.name, list)
    }
    list.push({ labels: s.labels, value: s.value })
  }
  return out
}

function matches(labels, filter) {
  for (const [k, v] of Object.entries(filter)) if (labels[k] !== v) return false
  return true
}

/** Sum of the samples of `name` whose labels include `filter`; undefined if there are none. */
export function sumSamples(metrics, name, filter = {}) {
  let total
  for (const s of metrics.get(name) ?? []) {
    if (matches(s.labels, filter)) total = (total ?? 0) + s.value
  }
  return total
}

/**
 * The cumulative buckets of histogram `name` (its `name_bucket` samples), summed over all other labels,
 * sorted by upper bound: `[{ le, count }]`, the last with `le` = Infinity. Empty if absent.
 */
export function histogramBuckets(metrics, name) {
  const byLe = new Map()
  for (const s of metrics.get(`${name}_bucket`) ?? []) {
    const le = parseValue(s.labels.le)
    if (le === undefined || Number.isNaN(le)) continue
    byLe.set(le, (byLe.get(le) ?? 0) + s.value)
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }))
}

/**
 * The observations between two scrapes of the same histogram: `now - before`, bucket by bucket.
 * Undefined if the buckets differ or a count went down (the node restarted).
 */
export function bucketDelta(now, before) {
  if (now.length !== before.length) return undefined
  const out = []
  for (let i = 0; i < now.length; i++) {
    const a = now[i]
    const b = before[i]
    if (a.le !== b.le || a.count < b.count) return undefined
    out.push({ le: a.le, count: a.count - b.count })
  }
  return out
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of cumulative buckets, interpolated linearly inside the bucket that holds
 * it, as PromQL's histogram_quantile does: the lowest bucket starts at 0, and a quantile in the +Inf
 * bucket is the highest finite bound. Null when there are no observations.
 */
export function histogramQuantile(q, buckets) {
  const last = buckets[buckets.length - 1]
  if (last === undefined || last.le !== Number.POSITIVE_INFINITY) return null
  const total = last.count
  if (!(total > 0)) return null
  const rank = q * total
  let prevLe = 0
  let prevCount = 0
  for (const b of buckets) {
    if (b.count >= rank && b.count > prevCount) {
      if (b.le === Number.POSITIVE_INFINITY) return prevLe
      if (b.le <= 0) return b.le
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / (b.count - prevCount)
    }
    prevLe = b.le
    prevCount = b.count
  }
  return prevLe
}

/** Per-second rate between two counter readings taken `seconds` apart; null across a reset or gap. */
export function rate(now, before, seconds) {
  if (now === undefined || before === undefined || !(seconds > 0) || now < before) return null
  return (now - before) / seconds
}

/** The latency histograms charted, by the key their quantiles get in a sample point. */
export const LATENCY_HISTOGRAMS = [
  ['shardRead', 'nodus_storage_shard_read_seconds'],
  ['shardWrite', 'nodus_storage_shard_write_seconds'],
  ['api', 'nodus_api_request_seconds'],
  ['pubsub', 'nodus_messaging_latency_seconds'],
]

/**
 * A sampler turns successive scrapes into chart points. Rates are over the time since the previous
 * scrape; latency quantiles (in ms) over the observations of the last `latencyWindowSeconds` (default
 * 10), so that a quiet histogram still shows its recent past. Fields are null where there is no data
 * yet (first scrape, no observations in the window, counter reset).
 */
export function createSampler(options = {}) {
  const windowSeconds = options.latencyWindowSeconds ?? 10
  let previous
  const history = []
  return (metrics, tSeconds) => {
    const counters = {
      put: sumSamples(metrics, 'nodus_storage_file_bytes_total', { direction: 'put' }) ?? 0,
      get: sumSamples(metrics, 'nodus_storage_file_bytes_total', { direction: 'get' }) ?? 0,
      shardOk: sumSamples(metrics, 'nodus_storage_shard_requests_total', { result: 'ok' }) ?? 0,
      shardAll: sumSamples(metrics, 'nodus_storage_shard_requests_total') ?? 0,
      published: sumSamples(metrics, 'nodus_messaging_published_total') ?? 0,
      delivered: sumSamples(metrics, 'nodus_messaging_delivered_total') ?? 0,
      dropped: sumSamples(metrics, 'nodus_messaging_dropped_total') ?? 0,
      kvLocal: sumSamples(metrics, 'nodus_kv_ops_applied_total', { source: 'local' }) ?? 0,
      kvGossip: sumSamples(metrics, 'nodus_kv_ops_applied_total', { source: 'gossip' }) ?? 0,
      kvSync: sumSamples(metrics, 'nodus_kv_ops_applied_total', { source: 'sync' }) ?? 0,
      kvRefused: sumSamples(metrics, 'nodus_kv_ops_refused_total') ?? 0,
      kvSyncs: sumSamples(metrics, 'nodus_kv_syncs_total') ?? 0,
      kvSyncsFailed: sumSamples(metrics, 'nodus_kv_syncs_total', { result: 'failed' }) ?? 0,
    }
    const buckets = {}
    for (const [key, name] of LATENCY_HISTOGRAMS) buckets[key] = histogramBuckets(metrics, name)
    const dt = previous === undefined ? 0 : tSeconds - previous.t
    const before = previous?.counters
    const lag = sumSamples(metrics, 'nodejs_eventloop_lag_p99_seconds')
    const shardFailedNow = counters.shardAll - counters.shardOk
    const point = {
      t: tSeconds,
      putBytesPerSecond: rate(counters.put, before?.put, dt),
      getBytesPerSecond: rate(counters.get, before?.get, dt),
      shardOkPerSecond: rate(counters.shardOk, before?.shardOk, dt),
      shardFailedPerSecond: rate(
        shardFailedNow,
        before === undefined ? undefined : before.shardAll - before.shardOk,
        dt,
      ),
      eventLoopLagP99Ms: lag === undefined || Number.isNaN(lag) ? null : lag * 1000,
      pubsubPublishedPerSecond: rate(counters.published, before?.published, dt),
      pubsubDeliveredPerSecond: rate(counters.delivered, before?.delivered, dt),
      pubsubDroppedPerSecond: rate(counters.dropped, before?.dropped, dt),
      pubsubQueued: sumSamples(metrics, 'nodus_messaging_queued_messages') ?? null,
      kvAppliedLocalPerSecond: rate(counters.kvLocal, before?.kvLocal, dt),
      kvAppliedGossipPerSecond: rate(counters.kvGossip, before?.kvGossip, dt),
      kvAppliedSyncPerSecond: rate(counters.kvSync, before?.kvSync, dt),
      kvRefusedPerSecond: rate(counters.kvRefused, before?.kvRefused, dt),
      kvSyncsPerSecond: rate(counters.kvSyncs, before?.kvSyncs, dt),
      kvSyncsFailedPerSecond: rate(counters.kvSyncsFailed, before?.kvSyncsFailed, dt),
    }
    // The newest earlier scrape at least a window old, else the oldest there is.
    let base
    for (const s of history) {
      if (s.t <= tSeconds - windowSeconds) base = s
    }
    base ??= history[0]
    for (const [key] of LATENCY_HISTOGRAMS) {
      const delta = base === undefined ? undefined : bucketDelta(buckets[key], base.buckets[key])
      for (const [q, suffix] of [
        [0.5, 'P50'],
        [0.95, 'P95'],
        [0.99, 'P99'],
      ]) {
        const v = delta === undefined ? null : histogramQuantile(q, delta)
        point[`${key}${suffix}Ms`] = v === null ? null : v * 1000
      }
    }
    previous = { t: tSeconds, counters }
    history.push({ t: tSeconds, buckets })
    while (history.length > 1 && (history[1]?.t ?? 0) <= tSeconds - windowSeconds) history.shift()
    return point
  }
}
