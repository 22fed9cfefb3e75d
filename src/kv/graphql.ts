/**
 * The kv area's GraphQL interface on the node's API (mercurius, graphql@16): `POST /graphql` and
 * `GET /graphql` for queries and mutations, and `GET /graphql` upgraded to a WebSocket for
 * subscriptions (the graphql-ws protocol, `graphql-transport-ws`; the older `graphql-ws` subprotocol
 * too). Schema: graphql-schema.ts; query resolvers: graphql-reads.ts; subscription routing:
 * graphql-events.ts. docs/API.md, "GraphQL (kv)".
 *
 * - Queries and subscriptions are open, as `GET /kv/:db/:key` is; mutations (`submitOperation`,
 *   `submitOperations`: signed envelopes, signed by the client) need the API token, as
 *   `POST /kv/ops` does: without it 401 `UNAUTHORIZED` (429 `RATE_LIMITED` in the caller's bucket).
 *   Mutations are refused over GET and over the WebSocket.
 * - Bounds: `kv.graphqlMaxTokens` (parse), `kv.graphqlMaxDepth` (mercurius's queryDepth),
 *   `kv.graphqlMaxFields` and `kv.graphqlMaxRootFields` (graphql-limits.ts), `kv.graphqlMaxElements`
 *   per field, `kv.graphqlMaxBodyBytes` per request, and the subscription bounds of graphql-events.ts.
 * - Errors carry `extensions.code`: `KV_GRAPHQL_INVALID` (400: syntax, validation),
 *   `KV_GRAPHQL_TOO_COMPLEX` (400), `UNAUTHORIZED` (401), `RATE_LIMITED` (429), `MESSAGE_TOO_LARGE`
 *   (413), or a read's NodusError code (`KV_WRONG_TYPE`, `INVALID_ARGUMENT`, …, with `details`).
 * - No GraphiQL: the dashboard's Content-Security-Policy allows no third-party scripts.
 */
import type { FastifyRequest, RouteOptions } from 'fastify'
import {
  type DocumentNode,
  type ExecutionResult,
  type GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  specifiedRules,
  validate,
} from 'graphql'
import mercurius from 'mercurius'
import type { ApiRoutes } from '../api/index.ts'
import { isNodusError, type NodusError } from '../common/errors.ts'
import type { Kv } from './area.ts'
import { KvEventHub, type KvWatch } from './graphql-events.ts'
import { operationLimitsRule, TOO_COMPLEX } from './graphql-limits.ts'
import { type KvReadsDeps, kvReadResolvers } from './graphql-reads.ts'
import { JsonScalar, KV_SDL, ScoreScalar } from './graphql-schema.ts'
import { type KvSealedReadsDeps, kvSealedResolvers } from './graphql-sealed.ts'
import type { KvGraphqlMetrics } from './metrics.ts'
import type { OpLimits } from './op.ts'
import type { KvGraphqlOptions } from './options.ts'
import { MAX_OPS_PER_REQUEST } from './routes.ts'

/** The path of the GraphQL endpoint (HTTP and WebSocket). */
export const GRAPHQL_PATH = '/graphql'
/** The code of a malformed document or request. */
export const GRAPHQL_INVALID = 'KV_GRAPHQL_INVALID'

/** What the GraphQL interface uses. */
export interface KvGraphqlDeps extends KvReadsDeps {
  kv: KvReadsDeps['kv'] & Pick<Kv, 'submit' | 'onApplied'>
  metrics: KvGraphqlMetrics
  /** A node's key record, for `readerKey` (graphql-sealed.ts). */
  keyRecord: KvSealedReadsDeps['keyRecord']
}

/** Section `kv`: the GraphQL bounds and the op bounds (to decode logged ops). */
export type KvGraphqlRouteOptions = KvGraphqlOptions & OpLimits

/** A GraphQL error with a code (and an HTTP status for a response without data). */
const { ErrorWithProps } = mercurius

/** A NodusError as a GraphQL error: `extensions: { code, details }`. */
export function graphqlErrorOf(err: NodusError): Error {
  return new ErrorWithProps(err.message, { code: err.code, details: err.details })
}

/** Rethrow a NodusError as a GraphQL error (for subscribe resolvers, whose errors mercurius sends as they are). */
const coded =
  <A extends unknown[], R>(fn: (...a: A) => R) =>
  (...a: A): R => {
    try {
      return fn(...a)
    } catch (err) {
      throw isNodusError(err) ? graphqlErrorOf(err) : err
    }
  }

type Original = Error & {
  errors?: unknown[]
  statusCode?: number
  code?: string
  extensions?: { code?: unknown }
}

/** The JSON of a parse, validation or depth error, with its code. */
function requestError(e: unknown): GraphQLFormattedError {
  const err = e as Original & Partial<GraphQLError>
  const code =
    err.code === 'MER_ERR_GQL_QUERY_DEPTH' || err.extensions?.code === TOO_COMPLEX
      ? TOO_COMPLEX
      : GRAPHQL_INVALID
  const json: GraphQLFormattedError =
    typeof err.toJSON === 'function' ? err.toJSON() : { message: err.message ?? String(e) }
  return { ...json, extensions: { ...json.extensions, code } }
}

/** The JSON of an execution or request error, with its code. */
function executionError(e: GraphQLError): GraphQLFormattedError {
  const json = e.toJSON()
  const orig = e.originalError as Original | undefined
  if (json.extensions?.code !== undefined || orig === undefined) return json
  if (isNodusError(orig)) return { ...json, extensions: { code: orig.code, details: orig.details } }
  const status = orig.statusCode
  const code =
    status === 413 ? 'MESSAGE_TOO_LARGE' : status !== undefined && status < 500 ? GRAPHQL_INVALID : 'INTERNAL'
  return { ...json, extensions: { code } }
}

/**
 * mercurius's errorFormatter: every error gets `extensions.code`; a response without data gets the
 * status of its first error (400 for a malformed request, 401 / 429 for a refused mutation).
 */
function formatErrors(execution: ExecutionResult & { errors: readonly GraphQLError[] }): {
  statusCode: number
  response: ExecutionResult
} {
  const errors: GraphQLFormattedError[] = []
  let status: number | undefined
  for (const e of execution.errors) {
    const orig = e.originalError as Original | undefined
    if (orig !== undefined && Array.isArray(orig.errors)) {
      // mercurius's MER_ERR_GQL_VALIDATION: syntax, validation or depth errors inside.
      for (const inner of orig.errors) errors.push(requestError(inner))
      status ??= orig.statusCode ?? 400
    } else {
      errors.push(executionError(e))
      status ??= orig?.statusCode
    }
  }
  const data = execution.data ?? null
  // The response body is plain JSON: formatted errors in place of GraphQLError objects.
  const response = { data, errors } as unknown as ExecutionResult
  return { statusCode: data === null ? (status ?? 200) : 200, response }
}

/** The route documentation swagger shows for /graphql (docs/API.md). */
function describe(route: RouteOptions): void {
  const summary =
    route.method === 'POST'
      ? 'GraphQL (kv): queries open, mutations need the bearer token (schema: "GraphQL (kv)" below)'
      : 'GraphQL (kv) queries; as a WebSocket (graphql-transport-ws), subscriptions'
  route.schema = { ...route.schema, tags: ['kv'], summary }
}

/**
 * The kv GraphQL endpoint, as a plugin for createApiServer (see the module doc).
 *
 * @param options - section `kv`: the `graphql*` bounds and the op bounds
 */
export function kvGraphql(deps: KvGraphqlDeps, options: KvGraphqlRouteOptions): ApiRoutes {
  const { kv, metrics } = deps
  return (app, ctx) => {
    void app.register(async (scope) => {
      const hub = new KvEventHub(
        { onApplied: (l) => kv.onApplied(l), metrics, errorOf: graphqlErrorOf },
        {
          maxSubscriptions: options.graphqlMaxSubscriptions,
          maxPerOwner: options.graphqlMaxSubscriptionsPerConnection,
          queueMax: options.graphqlSubscriptionQueue,
        },
      )
      const limitsRule = operationLimitsRule({
        maxFields: options.graphqlMaxFields,
        maxRootFields: options.graphqlMaxRootFields,
      })
      scope.addHook('onRoute', (route) => {
        if (route.url === GRAPHQL_PATH) describe(route)
      })
      scope.addHook('onClose', async () => hub.close())

      const submit = async (c: { reply: { request: FastifyRequest } }, envelopes: string[]) => {
        const refusal = await ctx.checkToken(c.reply.request)
        if (refusal !== undefined)
          throw new ErrorWithProps(
            refusal.body.message,
            { code: refusal.body.code, ...refusal.body.details },
            refusal.status,
          )
        if (envelopes.length > MAX_OPS_PER_REQUEST)
          throw new ErrorWithProps(
            `at most ${MAX_OPS_PER_REQUEST} operations per request`,
            { code: 'INVALID_ARGUMENT' },
            400,
          )
        const results = await kv.submit(envelopes.map((b) => new Uint8Array(Buffer.from(b, 'base64'))))
        return results.map((x) => ({
          id: x.id === undefined ? null : Buffer.from(x.id).toString('hex'),
          status: x.status,
          code: x.status === 'refused' ? x.code : null,
          message: x.status === 'refused' ? x.message : null,
        }))
      }
      /** A subscribe resolver: the connection (its upgrade request) owns the subscription. */
      const watch =
        <A>(of: (a: A) => KvWatch) =>
        (_: unknown, a: A, c: { reply?: { request?: object } }) =>
          hub.subscribe(of(a), c.reply?.request)

      await scope.register(mercurius, {
        schema: KV_SDL,
        resolvers: {
          JSON: JsonScalar,
          Score: ScoreScalar,
          Query: {
            ...kvReadResolvers(deps, {
              maxElements: options.graphqlMaxElements,
              limits: {
                maxOpBytes: options.maxOpBytes,
                maxKeyBytes: options.maxKeyBytes,
                maxFieldBytes: options.maxFieldBytes,
                maxValueBytes: options.maxValueBytes,
              },
            }),
            ...kvSealedResolvers(deps, { maxElements: options.graphqlMaxElements }),
          },
          Mutation: {
            submitOperation: async (
              _: unknown,
              a: { envelope: string },
              c: { reply: { request: FastifyRequest } },
            ) => (await submit(c, [a.envelope]))[0],
            submitOperations: (
              _: unknown,
              a: { envelopes: string[] },
              c: { reply: { request: FastifyRequest } },
            ) => submit(c, a.envelopes),
          },
          Subscription: {
            keyChanged: {
              subscribe: coded(watch((a: { db: string; key: string }) => ({ kind: 'key', ...a }))),
              resolve: (e: unknown) => e,
            },
            dbChanged: {
              subscribe: coded(watch((a: { db: string }) => ({ kind: 'db', db: a.db }))),
              resolve: (e: unknown) => e,
            },
            pattern: {
              subscribe: coded(watch((a: { db: string; prefix: string }) => ({ kind: 'prefix', ...a }))),
              resolve: (e: unknown) => e,
            },
          },
        },
        path: GRAPHQL_PATH,
        graphiql: false,
        ide: false,
        queryDepth: options.graphqlMaxDepth,
        validationRules: [limitsRule],
        graphql: { parseOptions: { maxTokens: options.graphqlMaxTokens } },
        subscription: true,
        // Compile a query with graphql-jit from its second use: about 1.5x the reads/s (bench/kv-graphql.bench.ts).
        jit: 1,
        errorFormatter: (execution) =>
          formatErrors(execution as ExecutionResult & { errors: readonly GraphQLError[] }),
        additionalRouteOptions: { bodyLimit: options.graphqlMaxBodyBytes },
      })
      // mercurius validates queries and mutations (with the rule above), not subscriptions.
      scope.graphql.addHook('preSubscriptionExecution', (schema: GraphQLSchema, document: DocumentNode) => {
        const errors = validate(schema, document, [...specifiedRules, limitsRule])
        const first = errors[0]
        if (first !== undefined)
          throw new ErrorWithProps(errors.map((e) => e.message).join('; '), {
            code: first.extensions.code === TOO_COMPLEX ? TOO_COMPLEX : GRAPHQL_INVALID,
          })
      })
    })
  }
}
