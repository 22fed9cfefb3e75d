/** Number formatting for the dashboard: SI bytes (kB, MB, GB as 1000^n, like `nodus` prints), durations. */

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB']

/** `1234567` → `1.23 MB`. */
export function formatBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–'
  let v = Math.abs(n)
  let i = 0
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000
    i++
  }
  const digits = i === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2
  return `${n < 0 ? '-' : ''}${v.toFixed(digits)} ${UNITS[i]}`
}

/** A plain number with up to 3 significant digits: `0.000123` → `0.000123`, `1234.5` → `1,235`. */
export function formatNumber(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–'
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en')
  return Number(n.toPrecision(3)).toString()
}

/** `3725` → `1 h 2 min`. */
export function formatSeconds(s) {
  if (!Number.isFinite(s)) return '–'
  if (s < 60) return `${Math.round(s)} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`
}

/** A timestamp in ms since the epoch as local date and time. */
export function formatTime(ms) {
  return ms === null || ms === undefined ? '–' : new Date(ms).toLocaleString()
}

/** The start and end of a long identifier (peer ID, CID): `12D3Ko…x8Qz`. */
export function shorten(id, head = 8, tail = 6) {
  return id.length <= head + tail + 1 ? id : `${id.slice(0, head)}…${id.slice(-tail)}`
}
