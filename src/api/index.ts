/**
 * The HTTP API: the fastify server with its guard (Host, token, rate limits, sizes), error format,
 * OpenAPI document, dashboard and `/metrics`; the areas' routes are plugins ({@link ApiRoutes}) passed
 * to {@link createApiServer}. What an area's routes.ts uses is here too: the route schemas, Range
 * parsing and the download writer. (docs.ts, which builds every area's routes, is not exported here.)
 */
export { parseRange } from './range.ts'
export * as schemas from './schemas.ts'
export {
  type ApiRouteContext,
  type ApiRoutes,
  type ApiServer,
  type ApiServerDeps,
  type ApiServerOptions,
  createApiServer,
  DEFAULT_API_OPTIONS,
  NODUS_VERSION,
  type RouteHook,
} from './server.ts'
export { writeParts } from './write-parts.ts'
