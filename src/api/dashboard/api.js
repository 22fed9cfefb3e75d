/**
 * The node's HTTP API as the page uses it: JSON reads, the API token, uploads with progress, event
 * streams.
 */
import { useEffect, useState } from 'preact/hooks'
import { createSseParser } from './sse.js'

const TOKEN_KEY = 'nodus.apiToken'
/** Reads give up after this long (a manifest may have to be found in the network). */
const READ_TIMEOUT_MS = 60_000

/** The API token pasted by the user, kept for this browser tab only (sessionStorage). */
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) ?? '',
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
}

/** An API error as `CODE: message` (the API answers `{ code, message, details }`). */
async function errorOf(res) {
  let body
  try {
    body = await res.json()
  } catch {
    return new Error(`HTTP ${res.status} ${res.statusText}`)
  }
  const err = new Error(`${body.code ?? `HTTP ${res.status}`}: ${body.message ?? res.statusText}`)
  err.code = body.code
  err.status = res.status
  return err
}

/** GET JSON; `auth`: send the bearer token (routes that need it). */
export async function getJson(path, { auth = false } = {}) {
  const res = await fetch(path, {
    headers: {
      accept: 'application/json',
      ...(auth ? { authorization: `Bearer ${token.get()}` } : {}),
    },
    signal: AbortSignal.timeout(READ_TIMEOUT_MS),
  })
  if (!res.ok) throw await errorOf(res)
  return await res.json()
}

export async function getText(path) {
  const res = await fetch(path, { signal: AbortSignal.timeout(READ_TIMEOUT_MS) })
  if (!res.ok) throw await errorOf(res)
  return await res.text()
}

/** POST a JSON body with the bearer token. */
export async function postJson(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token.get()}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(READ_TIMEOUT_MS),
  })
  if (!res.ok) throw await errorOf(res)
  return await res.json()
}

/**
 * Follow a server-sent-event stream with the bearer token (fetch and a stream reader: EventSource sends
 * no Authorization header). `onOpen()` once the node accepted the request (its subscription exists);
 * `onEvent(name, data)` per event. Resolves to `ended` when the node ends the stream, `aborted` when
 * `signal` aborts; rejects with the API's error for a refusal (401, 429, ...) or a broken connection.
 */
export async function followEvents(path, { onOpen, onEvent, signal }) {
  const aborted = () => signal?.aborted === true
  let reader
  try {
    const res = await fetch(path, {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${token.get()}` },
      cache: 'no-store',
      signal,
    })
    if (!res.ok) throw await errorOf(res)
    onOpen?.()
    reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    const push = createSseParser(onEvent)
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return aborted() ? 'aborted' : 'ended'
      push(value)
    }
  } catch (err) {
    if (aborted()) return 'aborted'
    throw err
  } finally {
    reader?.releaseLock()
  }
}

/** What to tell the user about a failed call that needed the token. */
export function authHint(err) {
  return err.status === 401
    ? 'The node refused the API token: paste the contents of <data-dir>/api-token.'
    : err.message
}

/**
 * Upload a File with `POST /files` (streamed body). XMLHttpRequest, not fetch, because only it reports
 * upload progress. `onProgress(sentBytes, totalBytes)`; resolves to the API's PutResult.
 * Returns `{ done, abort }`.
 */
export function uploadFile(file, onProgress) {
  const xhr = new XMLHttpRequest()
  const done = new Promise((resolve, reject) => {
    xhr.open('POST', `/files?name=${encodeURIComponent(file.name)}`)
    xhr.setRequestHeader('content-type', 'application/octet-stream')
    xhr.setRequestHeader('authorization', `Bearer ${token.get()}`)
    xhr.responseType = 'json'
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size)
    xhr.onload = () => {
      if (xhr.status === 200) {
        resolve(xhr.response)
        return
      }
      const body = xhr.response ?? {}
      const err = new Error(`${body.code ?? `HTTP ${xhr.status}`}: ${body.message ?? xhr.statusText}`)
      err.status = xhr.status
      reject(err)
    }
    // The node refuses a wrong token or a file over api.maxUploadBytes at once and closes the
    // connection; a browser still sending the file may then see only the closed connection.
    xhr.onerror = () =>
      reject(
        new Error(
          'the upload failed: the node closed the connection (it stopped, or refused the API token or the file size)',
        ),
      )
    xhr.onabort = () => reject(new Error('upload cancelled'))
    xhr.send(file)
  })
  return { done, abort: () => xhr.abort() }
}

/**
 * Poll `load()` every `intervalMs` (the next call starts after the previous one ends) while the
 * component is mounted; `{ data, error, reload }`. A failed poll keeps the last data.
 */
export function usePoll(load, intervalMs, deps = []) {
  const [state, setState] = useState({ data: undefined, error: undefined })
  const [nonce, setNonce] = useState(0)
  useEffect(() => {
    let stopped = false
    let timer
    const tick = async () => {
      try {
        const data = await load()
        if (!stopped) setState({ data, error: undefined })
      } catch (err) {
        if (!stopped) setState((s) => ({ data: s.data, error: err.message }))
      }
      if (!stopped && intervalMs > 0) timer = setTimeout(tick, intervalMs)
    }
    void tick()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [...deps, nonce])
  return { ...state, reload: () => setNonce((n) => n + 1) }
}
