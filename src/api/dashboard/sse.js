/**
 * Server-sent events read from a fetch() body (WHATWG HTML, "Server-sent events", the event stream
 * interpretation). The page cannot use EventSource: it sends no Authorization header, and the node's
 * streams need the API token. Pure, no DOM: test/e2e/dashboard.test.ts runs it in Node too. Types: sse.d.ts.
 */

/**
 * A parser fed text chunks as they arrive (split anywhere, lines ended by CRLF, LF or CR); it calls
 * `onEvent(name, data, id)` for each event that has data: `name` is `message` without an `event:`
 * field, `data` the `data:` lines joined by `\n`, `id` the last `id:` seen (the last-event-ID, `''`
 * before any). Comment lines (`:`), `retry:` and unknown fields are skipped. Returns `push(chunk)`.
 */
export function createSseParser(onEvent) {
  let buffered = ''
  let pendingCr = false
  let name = ''
  let data = []
  let lastId = ''
  const line = (text) => {
    if (text === '') {
      if (data.length > 0) onEvent(name === '' ? 'message' : name, data.join('\n'), lastId)
      name = ''
      data = []
      return
    }
    const colon = text.indexOf(':')
    if (colon === 0) return
    const field = colon < 0 ? text : text.slice(0, colon)
    let value = colon < 0 ? '' : text.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') name = value
    else if (field === 'data') data.push(value)
    else if (field === 'id' && !value.includes('\0')) lastId = value
  }
  return (chunk) => {
    let text = buffered + chunk
    // A CR that ended the previous chunk already ended its line; an LF right after it is that line's.
    if (pendingCr && text.startsWith('\n')) text = text.slice(1)
    pendingCr = false
    let start = 0
    for (let i = 0; i < text.length; i++) {
      const c = text[i]
      if (c !== '\n' && c !== '\r') continue
      line(text.slice(start, i))
      if (c === '\r') {
        if (i + 1 === text.length) pendingCr = true
        else if (text[i + 1] === '\n') i++
      }
      start = i + 1
    }
    buffered = text.slice(start)
  }
}
