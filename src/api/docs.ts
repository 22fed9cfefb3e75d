/**
 * Generated documentation: docs/API.md from the routes' OpenAPI document, docs/METRICS.md from the
 * metrics registry. `npm run docs` writes them (scripts/gen-docs.ts); a test checks they are current.
 */
import { NodusError } from '../common/errors.ts'
import { silentLogger } from '../common/logger.ts'
import { parseConfig } from '../config/index.ts'
import { consensusRoutes } from '../consensus/index.ts'
import { KV_SDL, kvGraphql, kvRoutes } from '../kv/index.ts'
import { ledgerRoutes } from '../ledger/index.ts'
import { directRoutes, messagingRoutes } from '../messaging/index.ts'
import { NodusMetrics } from '../metrics/index.ts'
import { netRoutes } from '../net/index.ts'
import { nodeRoutes } from '../node/index.ts'
import { storageRoutes } from '../storage/index.ts'
import { type ApiRoutes, createApiServer } from './server.ts'

interface OpenApiOp {
  summary?: string
  security?: unknown[]
  parameters?: {
    name: string
    in: string
    required?: boolean
    schema?: { type?: string }
    description?: string
  }[]
  requestBody?: { content?: Record<string, { schema?: unknown }> }
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>
}

function compact(schema: unknown): string {
  return JSON.stringify(schema, (key, value: unknown) =>
    key === 'required' || key === 'additionalProperties' ? undefined : value,
  )
}

/** Stands in for every service the routes would call: documenting them calls none. */
function notServed(): never {
  throw new NodusError('NOT_STARTED', 'documentation only')
}

/**
 * Every area's routes, in the order the node serves them (src/node/node.ts), built with stand-ins for
 * their services: enough to register them and read their schemas, not to answer a request.
 */
function documentedRoutes(): ApiRoutes[] {
  const libp2p = {
    getPeers: notServed,
    getConnections: notServed,
    getMultiaddrs: notServed,
    dial: notServed,
    hangUp: notServed,
  }
  const store = { usage: notServed, list: notServed }
  return [
    nodeRoutes({
      identity: {
        peerId: { toString: notServed },
        ed25519: { publicKey: { raw: new Uint8Array(32) } },
        mldsa: { publicKey: new Uint8Array(1952) },
      },
      libp2p,
      store,
      shardServer: { inFlight: 0, served: 0 },
      provideQueue: { size: 0 },
    }),
    netRoutes({ libp2p, trust: { score: notServed }, perf: { stats: notServed, score: notServed } }),
    storageRoutes({
      store,
      files: { resolveManifest: notServed, get: notServed },
      pins: { put: notServed, list: notServed, pin: notServed, grant: notServed, unpin: notServed },
    }),
    messagingRoutes({
      messaging: { publish: notServed, subscribe: notServed, topics: notServed },
      maxMessageBytes: 0,
    }),
    directRoutes({
      direct: { send: notServed, inbox: notServed, deleteMessage: notServed, onMessage: notServed },
      maxBodyBytes: 0,
    }),
    kvRoutes({
      kv: {
        engine: {
          get reader(): never {
            return notServed()
          },
        },
        submit: notServed,
        host: notServed,
        sync: notServed,
        status: notServed,
        hosted: notServed,
      },
      clock: { now: notServed },
    }),
    kvGraphql(
      {
        kv: {
          hosted: notServed,
          status: notServed,
          submit: notServed,
          onApplied: notServed,
          engine: { reader: { get: notServed, range: notServed }, getOp: notServed, index: notServed },
        },
        clock: { now: notServed },
        metrics: new NodusMetrics(),
        keyRecord: notServed,
      },
      parseConfig({ dataDir: '/unused' }).kv,
    ),
    // Without a genesis both answer CONSENSUS_OFF: registered as the node registers them.
    consensusRoutes({ consensus: undefined }),
    ledgerRoutes({ ledger: undefined, submit: undefined }),
  ]
}

/** The OpenAPI 3 document of the API (no node needed). */
export async function openApiDocument(): Promise<{ paths: Record<string, Record<string, OpenApiOp>> }> {
  const server = createApiServer({ token: 'unused', logger: silentLogger(), routes: documentedRoutes() })
  await server.app.ready()
  const doc = server.app.swagger() as { paths: Record<string, Record<string, OpenApiOp>> }
  await server.close()
  return doc
}

/** docs/API.md. */
export async function apiMarkdown(): Promise<string> {
  const doc = await openApiDocument()
  const out: string[] = [
    '# HTTP API',
    '',
    'Generated from the route schemas in src/api/ by `npm run docs`; do not edit by hand. The live',
    'OpenAPI 3 document is served at `GET /openapi.json`.',
    '',
    'The API binds 127.0.0.1 by default (`api.host`, `api.port`; `nodus start --api-port PORT`). Errors are',
    '`{ code, message, details }` with the status in docs/ERRORS.md (the HTTP-layer codes are in its last',
    'table). Before any route runs, and before any body is read (src/api/guard.ts):',
    '',
    '- **Host.** The `Host` header must name the API itself: an IP literal, `localhost`, the bind host, or a',
    '  name in `api.allowedHosts`; anything else gets 403 `HOST_NOT_ALLOWED` (a web page cannot reach the API',
    '  through DNS rebinding). The port is not compared.',
    '- **Token.** Routes marked **auth** need `Authorization: Bearer <token>`, the token `nodus init` wrote to',
    '  `<data-dir>/api-token` (mode 0600), compared in constant time. Without it they answer 401',
    '  `UNAUTHORIZED` whatever the request carries (any Content-Type, body or size), closing the connection',
    '  when a body was announced.',
    '- **Rate limits** (auth routes; 429 `RATE_LIMITED` with `Retry-After`): the token holder has one bucket',
    '  of `api.mutatingPerMinute` requests a minute; clients without the token have one bucket per address',
    "  of `api.unauthenticatedPerMinute`, so they cannot use up the holder's.",
    '- **Sizes.** An upload whose `Content-Length` exceeds `api.maxUploadBytes` (64 GiB by default) gets 413',
    '  `MESSAGE_TOO_LARGE` before its body is read (a chunked one once past it); a JSON body over 64 KiB 413; a',
    '  URL over 8 KiB 414, a request head over 16 KiB 431, both `MESSAGE_TOO_LARGE`.',
    '- **`Expect: 100-continue`** is honoured: `100 Continue` is sent only once the checks above passed, so a',
    '  client that waits for it (the CLI does; curl does for bodies over 1 MiB) learns of a refusal before',
    '  sending its body.',
    '',
    '| method | path | auth | summary |',
    '|---|---|---|---|',
  ]
  const entries = Object.entries(doc.paths).sort(([a], [b]) => a.localeCompare(b))
  for (const [path, ops] of entries) {
    for (const [method, op] of Object.entries(ops)) {
      out.push(
        `| ${method.toUpperCase()} | \`${path}\` | ${op.security === undefined ? '' : '**auth**'} | ${op.summary ?? ''} |`,
      )
    }
  }
  for (const [path, ops] of entries) {
    for (const [method, op] of Object.entries(ops)) {
      out.push('', `## ${method.toUpperCase()} ${path}`, '', op.summary ?? '')
      for (const p of op.parameters ?? []) {
        out.push(
          `- ${p.in} \`${p.name}\`${p.required === true ? ' (required)' : ''}: ${p.schema?.type ?? ''}${p.description === undefined ? '' : `, ${p.description}`}`,
        )
      }
      for (const [type, body] of Object.entries(op.requestBody?.content ?? {}))
        out.push(`- body (${type}): \`${compact(body.schema)}\``)
      for (const [status, r] of Object.entries(op.responses ?? {})) {
        const schema = Object.values(r.content ?? {})[0]?.schema
        out.push(`- ${status}: ${schema === undefined ? (r.description ?? '') : `\`${compact(schema)}\``}`)
      }
    }
  }
  out.push('', GRAPHQL_DOC, '', '```graphql', KV_SDL.trim(), '```')
  return `${out.join('\n')}\n`
}

/** The GraphQL section of docs/API.md (the schema follows it, from src/kv/graphql-schema.ts). */
const GRAPHQL_DOC = `## GraphQL (kv)

\`POST /graphql\` (JSON \`{ query, variables, operationName }\`, or \`application/graphql\`) and \`GET /graphql\`
(\`?query=\`, queries only) serve the kv area's schema below (src/kv/graphql.ts, mercurius); \`GET /graphql\`
upgraded to a WebSocket serves subscriptions over the graphql-ws protocol (subprotocol
\`graphql-transport-ws\`; the legacy \`graphql-ws\` too). The TypeScript client \`nodus/client\`
(\`NodusKvClient\`, src/kv/client.ts) speaks both and signs operations locally.

- **Auth.** Queries and subscriptions are open, as \`GET /kv/:db/:key\` is. The mutations
  \`submitOperation\` and \`submitOperations\` (base64 signed envelopes, as \`POST /kv/ops\` takes) need
  \`Authorization: Bearer <token>\`: without it they answer 401 \`UNAUTHORIZED\` (429 \`RATE_LIMITED\` in
  the caller's bucket), applying nothing. Mutations are refused over GET (405) and over the WebSocket.
- **Bounds** (section \`kv\`, docs/CONFIG.md): \`graphqlMaxTokens\` per document, \`graphqlMaxDepth\`,
  \`graphqlMaxFields\` (aliases and fragment uses counted) and \`graphqlMaxRootFields\` per operation,
  \`graphqlMaxElements\` per field (a larger \`count\` or \`limit\` is refused; a range without one is cut
  there), \`graphqlMaxBodyBytes\` per request; \`graphqlMaxSubscriptions\` per node,
  \`graphqlMaxSubscriptionsPerConnection\`, \`graphqlSubscriptionQueue\` events per subscriber (one that
  falls further behind is ended with \`QUEUE_FULL\`, never silently skipped).
- **Errors** carry \`extensions.code\` (docs/ERRORS.md): \`KV_GRAPHQL_INVALID\` (400: syntax, validation,
  a body that is not JSON), \`KV_GRAPHQL_TOO_COMPLEX\` (400), \`UNAUTHORIZED\`, \`RATE_LIMITED\`,
  \`MESSAGE_TOO_LARGE\` (413), or a read's code (\`KV_WRONG_TYPE\`, \`INVALID_ARGUMENT\`,
  \`KV_INDEX_NOT_FOUND\`, with \`extensions.details\`) beside that read's \`null\`: every read is
  nullable, so one failing read leaves the others' answers.
- **Values** are the \`JSON\` scalar: JSON as it is, bytes as \`{ "$bytes": "<base64>" }\`; sorted-set
  scores the \`Score\` scalar (a number, or \`"+inf"\` / \`"-inf"\`); ids hex.
- **Subscriptions** get the operations applied on this node (written here, by gossip or by sync) from
  when the node registers them: read the state after subscribing to miss nothing. An operation is routed
  to the subscribers of its key, of its database and of the prefixes of its key before any GraphQL
  runs.

\`\`\`graphql
# Examples
query ($db: String!) {
  get(db: $db, key: "greeting")
  top: zrange(db: $db, key: "scores", start: "+inf", stop: "(10", byScore: true, rev: true, offset: 0, count: 3) { member score }
  tsRange(db: $db, key: "temp", from: 0, aggregation: avg, bucketMs: 60000) { timestamp value }
  opsSince(db: $db, after: { ms: 1760000000000 }) { ops { id hlc { ms c } body } cursor }
}
subscription ($db: String!) { keyChanged(db: $db, key: "greeting") { op args hlc { ms c } source } }
\`\`\`

### Schema`

/** docs/METRICS.md. */
export async function metricsMarkdown(): Promise<string> {
  const m = new NodusMetrics()
  const metrics = (await m.registry.getMetricsAsJSON()).map((x) => ({
    name: x.name,
    type: String(x.type),
    help: x.help,
  }))
  const ours = metrics.filter((x) => x.name.startsWith('nodus_')).sort((a, b) => a.name.localeCompare(b.name))
  const others = metrics.filter((x) => !x.name.startsWith('nodus_')).map((x) => `\`${x.name}\``)
  return `# Metrics

Generated from src/metrics/metrics.ts by \`npm run docs\`; do not edit by hand.

Every node serves Prometheus text at \`GET /metrics\` from its own registry. Names follow
\`nodus_<area>_<what>_<unit>\`; times are in seconds, sizes in bytes.

| name | type | meaning |
|---|---|---|
${ours.map((x) => `| \`${x.name}\` | ${x.type} | ${x.help} |`).join('\n')}

Process and runtime metrics from prom-client's defaults are also exported, among them the event-loop
lag: ${others.join(', ')}.
`
}

/**
 * A Grafana dashboard (JSON model, schema 39) with one panel per nodus metric: rates for counters,
 * p50/p99 (histogram_quantile) for histograms, values for gauges; plus event-loop lag and memory.
 * Written to dashboards/nodus.json by `npm run docs`.
 */
export async function grafanaDashboard(): Promise<string> {
  const m = new NodusMetrics()
  const metrics = (await m.registry.getMetricsAsJSON())
    .map((x) => ({ name: x.name, type: String(x.type), help: x.help }))
    .filter((x) => x.name.startsWith('nodus_'))
    .sort((a, b) => a.name.localeCompare(b.name))
  const extra = [
    { name: 'nodejs_eventloop_lag_p99_seconds', type: 'gauge', help: 'Event-loop lag, p99' },
    { name: 'process_resident_memory_bytes', type: 'gauge', help: 'Resident memory' },
  ]
  const panels = [...metrics, ...extra].map((x, i) => {
    const targets =
      x.type === 'histogram'
        ? [0.5, 0.99].map((q, r) => ({
            refId: String.fromCharCode(65 + r),
            expr: `histogram_quantile(${q}, sum by (le, instance) (rate(${x.name}_bucket[5m])))`,
            legendFormat: `p${q * 100} {{instance}}`,
          }))
        : x.type === 'counter'
          ? [{ refId: 'A', expr: `sum by (instance) (rate(${x.name}[5m]))`, legendFormat: '{{instance}}' }]
          : [{ refId: 'A', expr: x.name, legendFormat: '{{instance}}' }]
    const unit = x.name.endsWith('_seconds')
      ? 's'
      : x.name.endsWith('_bytes')
        ? 'bytes'
        : x.type === 'counter'
          ? 'ops'
          : 'short'
    return {
      id: i + 1,
      type: 'timeseries',
      title: x.name,
      description: x.help,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's datasource variable, literally
      datasource: { type: 'prometheus', uid: '${DS_PROMETHEUS}' },
      gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
      fieldConfig: { defaults: { unit }, overrides: [] },
      options: { legend: { showLegend: true, displayMode: 'list', placement: 'bottom' } },
      targets,
    }
  })
  const dashboard = {
    __inputs: [
      {
        name: 'DS_PROMETHEUS',
        label: 'Prometheus',
        type: 'datasource',
        pluginId: 'prometheus',
        pluginName: 'Prometheus',
      },
    ],
    title: 'nodus node',
    uid: 'nodus-node',
    description:
      'Generated from src/metrics/metrics.ts by `npm run docs`; one panel per metric (docs/METRICS.md).',
    schemaVersion: 39,
    version: 1,
    editable: true,
    time: { from: 'now-1h', to: 'now' },
    refresh: '10s',
    tags: ['nodus'],
    templating: { list: [] },
    panels,
  }
  return `${JSON.stringify(dashboard, null, 2)}\n`
}
