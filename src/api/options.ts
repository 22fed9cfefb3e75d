/**
 * The API area's config keys: section `api` of the config file (docs/CONFIG.md). Pure table; the type
 * {@link ApiOptions} is derived from it.
 */
import { defineOptions, GiB, type OptionsOf } from '../common/options.ts'

/** A DNS host name (letters, digits, hyphens, dots; optional trailing dot), as `api.allowedHosts` takes. */
const HOST_NAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/

/** Section `api`: the HTTP API's address, rate limits, Host check and upload bound. */
export const API_OPTIONS = defineOptions({
  host: {
    kind: 'string',
    default: '127.0.0.1',
    description: 'address the HTTP API binds (loopback by default)',
  },
  port: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 65535,
    description: 'HTTP API port; 0 picks a free one',
  },
  mutatingPerMinute: {
    kind: 'int',
    default: 600,
    min: 1,
    description:
      'requests per minute to token-protected routes carrying the valid token (one bucket for the token holder, whatever the client address); not counted: POST /pubsub/:topic and POST /messages/:peer, which their own queues bound (QUEUE_FULL)',
  },
  unauthenticatedPerMinute: {
    kind: 'int',
    default: 120,
    min: 1,
    description:
      'requests per minute per client address to token-protected routes without the valid token (401 up to this, then 429); counted apart from the token holder, so they never use up its bucket',
  },
  allowedHosts: {
    kind: 'strings',
    default: [],
    check: (v: readonly string[]) =>
      v.every((x) => HOST_NAME.test(x)) ? undefined : 'expected host names without scheme, port or path',
    description:
      'host names (no port) accepted in the Host header besides localhost, IP literals and `api.host`; any other Host gets 403 HOST_NOT_ALLOWED (DNS-rebinding defence). Add the name a reverse proxy or your browser uses',
  },
  maxUploadBytes: {
    kind: 'int',
    default: 64 * GiB,
    min: 1,
    description:
      'largest file accepted by `POST /files`, bytes; a larger Content-Length gets 413 before the body is read, a chunked body is cut off with 413 past it',
  },
})

/** The values of section `api` (config.api). */
export type ApiOptions = OptionsOf<typeof API_OPTIONS>
