/**
 * The GraphQL transport of the kv client (client.ts): queries and mutations as JSON over `fetch` to
 * `<url>/graphql`, errors turned into NodusErrors, values turned back from their JSON form.
 */
import { type AbortOptions, throwIfAborted } from '../common/abort.ts'
import { type ErrorCode, NodusError } from '../common/errors.ts'
import { HTTP_STATUS } from '../config/index.ts'
import type { KvValue } from './op-types.ts'

/** Options of {@link KvGraphqlTransport}. */
export interface KvTransportOptions {
  /** The node's API base URL, e.g. `http://127.0.0.1:7070` (GraphQL is at `<url>/graphql`). */
  url: string
  /** The node's API token (`<data-dir>/api-token`): mutations need it; queries and subscriptions do not. */
  token?: string
  /** The fetch implementation; default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch
  /** Time one request may take, ms; default 30,000. */
  timeoutMs?: number
}

/** A KvValue from its JSON form: `{ $bytes: base64 }` back to bytes. */
export function valueFromJson(v: unknown): KvValue {
  if (Array.isArray(v)) return v.map(valueFromJson)
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    const keys = Object.keys(o)
    if (keys.length === 1 && keys[0] === '$bytes' && typeof o.$bytes === 'string')
      return new Uint8Array(Buffer.from(o.$bytes, 'base64'))
    const out: { [k: string]: KvValue } = {}
    for (const k of keys) out[k] = valueFromJson(o[k])
    return out
  }
  return v as KvValue
}

/**
 * A GraphQL error (`{ message, extensions: { code, details } }`) as a NodusError: its code when nodus
 * knows it, else PROTOCOL_ERROR with the code in `details.code` (`UNAUTHORIZED`, `RATE_LIMITED`).
 */
export function errorOf(
  e: { message?: unknown; extensions?: { code?: unknown; details?: unknown } },
  status?: number,
): NodusError {
  const code = typeof e.extensions?.code === 'string' ? e.extensions.code : undefined
  const message = typeof e.message === 'string' ? e.message : 'GraphQL error'
  const details = {
    ...(status === undefined ? {} : { status }),
    ...(typeof e.extensions?.details === 'object' && e.extensions.details !== null
      ? e.extensions.details
      : {}),
  }
  if (code !== undefined && code in HTTP_STATUS)
    return new NodusError(code as ErrorCode, message, { details })
  return new NodusError('PROTOCOL_ERROR', message, { details: { ...details, code } })
}

/** A GraphQL client of one node. */
export class KvGraphqlTransport {
  readonly #url: string
  readonly #token: string | undefined
  readonly #fetch: typeof globalThis.fetch
  readonly #timeoutMs: number

  constructor(options: KvTransportOptions) {
    this.#url = options.url.replace(/\/+$/, '')
    this.#token = options.token
    this.#fetch = options.fetch ?? globalThis.fetch
    this.#timeoutMs = options.timeoutMs ?? 30_000
  }

  /** The node's API base URL (no trailing slash). */
  get url(): string {
    return this.#url
  }

  /**
   * Run a GraphQL operation; the `data` of its answer.
   *
   * @throws NodusError with the first error's code (`KV_WRONG_TYPE`, `KV_GRAPHQL_INVALID`, …);
   *   `PROTOCOL_ERROR` (`details.code`: `UNAUTHORIZED`, `RATE_LIMITED`, …) for codes outside nodus's
   *   tables; `TIMEOUT` after `timeoutMs`; `ABORTED`
   */
  async request<T = Record<string, unknown>>(
    query: string,
    variables: Record<string, unknown> = {},
    options: AbortOptions = {},
  ): Promise<T> {
    throwIfAborted(options.signal)
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
    let res: Response
    try {
      res = await this.#fetch(`${this.#url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.#token === undefined ? {} : { authorization: `Bearer ${this.#token}` }),
        },
        body: JSON.stringify({ query, variables }),
        signal,
      })
    } catch (err) {
      if (options.signal?.aborted) throw new NodusError('ABORTED', 'the request was aborted', { cause: err })
      if (timeout.aborted)
        throw new NodusError('TIMEOUT', `no answer within ${this.#timeoutMs} ms`, { cause: err })
      throw new NodusError('NODE_UNREACHABLE', `cannot reach ${this.#url}: ${(err as Error).message}`, {
        details: { url: this.#url },
        cause: err,
      })
    }
    const text = await res.text()
    let body: { data?: T | null; errors?: { message?: unknown; extensions?: { code?: unknown } }[] }
    try {
      body = JSON.parse(text) as typeof body
    } catch {
      throw new NodusError('PROTOCOL_ERROR', `HTTP ${res.status}: not a GraphQL answer`, {
        details: { status: res.status },
      })
    }
    const first = body.errors?.[0]
    if (first !== undefined) throw errorOf(first, res.status)
    if (body.data == null) throw new NodusError('PROTOCOL_ERROR', `HTTP ${res.status} without data`)
    return body.data
  }

  /** One field of Query, with its arguments (undefined ones left out) and selection. */
  protected async read<T>(
    field: string,
    args: Record<string, [type: string, value: unknown]>,
    selection = '',
    options: AbortOptions = {},
  ): Promise<T> {
    const given = Object.entries(args).filter(([, [, v]]) => v !== undefined)
    const decl = given.map(([k, [t]]) => `$${k}: ${t}`).join(', ')
    const call = given.map(([k]) => `${k}: $${k}`).join(', ')
    const q = `query${decl === '' ? '' : `(${decl})`} { r: ${field}${call === '' ? '' : `(${call})`}${selection === '' ? '' : ` { ${selection} }`} }`
    const data = await this.request<{ r: T }>(
      q,
      Object.fromEntries(given.map(([k, [, v]]) => [k, v])),
      options,
    )
    return data.r
  }
}
