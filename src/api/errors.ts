/**
 * The API area's error codes (docs/ERRORS.md). Its routes raise the codes of the areas they serve, so
 * its `defineErrors` table is empty; the codes the HTTP layer answers with itself (guard, fastify,
 * Node's HTTP parser), which are not NodusErrors, are {@link HTTP_LAYER_ERRORS}.
 */
import { defineErrors } from '../common/errors.ts'

/** The API raises no NodusError codes of its own. */
export const API_ERRORS = defineErrors({})

/** A code the HTTP layer answers with itself: docs/ERRORS.md's "Codes from the HTTP layer". */
export interface HttpLayerError {
  readonly code: string
  /** The HTTP status, or statuses (`'413, 414, 431'`). */
  readonly status: string
  /** What happened. */
  readonly what: string
  /** What to do. */
  readonly fix: string
}

/** The codes of the HTTP layer (src/api/guard.ts, server.ts), in docs order. */
export const HTTP_LAYER_ERRORS: readonly HttpLayerError[] = Object.freeze([
  {
    code: 'HOST_NOT_ALLOWED',
    status: '403',
    what: "the `Host` header is not the API's own address (IP literal, `localhost`, the bind host) nor in `api.allowedHosts`: checked first, on every route (DNS-rebinding defence)",
    fix: 'use the URL the node prints (`http://127.0.0.1:PORT`), or add the name you use (reverse proxy, LAN name) to `api.allowedHosts`',
  },
  {
    code: 'UNAUTHORIZED',
    status: '401',
    what: 'a route marked **auth** in docs/API.md without the right bearer token; answered before any body is read, whatever it carries (the connection is closed when a body was announced)',
    fix: 'send `Authorization: Bearer <token>` with the token in `<data-dir>/api-token`',
  },
  {
    code: 'NOT_FOUND',
    status: '404',
    what: 'no such route',
    fix: 'check the path against docs/API.md',
  },
  {
    code: 'RATE_LIMITED',
    status: '429',
    what: 'more requests to auth routes than `api.mutatingPerMinute` with the token (one bucket for the holder) or `api.unauthenticatedPerMinute` without it (one bucket per client address); `Retry-After` gives the seconds',
    fix: "wait and retry; requests without the token never count against the holder's bucket",
  },
  {
    code: 'MESSAGE_TOO_LARGE',
    status: '413, 414, 431',
    what: '413: an upload whose `Content-Length` (or chunked body) exceeds `api.maxUploadBytes`, refused before its body is read, or a JSON body over 64 KiB; 414: a URL over 8 KiB or a path parameter over 100 characters; 431: request line and headers over 16 KiB',
    fix: 'send less; raise `api.maxUploadBytes` for larger files',
  },
  {
    code: 'INVALID_ARGUMENT',
    status: '400',
    what: 'a request Node could not parse as HTTP, or a URL that does not decode',
    fix: 'fix the client',
  },
  {
    code: 'TIMEOUT',
    status: '408',
    what: 'the request head did not arrive in time',
    fix: 'retry',
  },
  {
    code: 'INTERNAL',
    status: '500',
    what: 'a bug',
    fix: "report it with the node's log",
  },
])
