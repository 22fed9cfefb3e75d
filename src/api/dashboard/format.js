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

/** `format(v)`, or `–` when there is no value (null or undefined). */
export function orDash(format, v) {
  return v === null || v === undefined ? '–' : format(v)
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

/** The bytes of a base64 string (the API sends message bodies so). */
export function decodeBase64(b64) {
  const bin = atob(b64)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

/** C0 controls other than tab, LF and CR, DEL, C1 controls: text holding these is shown as bytes. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/

/**
 * A short, display-safe preview of a message body (render it as text, never as HTML):
 * `{ kind: 'text', text }` when the bytes are UTF-8 without control characters (at most `maxChars`
 * characters of it), else `{ kind: 'binary', text }` with the first `maxBytes` bytes in hex
 * (`68 65 6c`). `truncated` says whether some was left out.
 */
export function previewBytes(bytes, maxChars = 200, maxBytes = 32) {
  // Only the head is decoded (a UTF-8 character is at most 4 bytes); when that cuts the body, stream
  // mode holds back a character cut at the end of the head instead of calling it malformed.
  const head = bytes.subarray(0, maxChars * 4)
  let text
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: head.length < bytes.length })
  } catch {
    text = undefined
  }
  if (text !== undefined && !CONTROL.test(text)) {
    const chars = Array.from(text)
    return {
      kind: 'text',
      text: chars.slice(0, maxChars).join(''),
      truncated: chars.length > maxChars || bytes.length > head.length,
    }
  }
  const shown = Array.from(bytes.subarray(0, maxBytes), (b) => b.toString(16).padStart(2, '0'))
  return { kind: 'binary', text: shown.join(' '), truncated: bytes.length > maxBytes }
}
