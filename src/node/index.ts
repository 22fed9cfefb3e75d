/** The node area: the composition root's public parts used by other areas (its HTTP routes). */
export {
  type IdentityInfo,
  identityInfo,
  type NodeRoutesDeps,
  nodeRoutes,
  type PublicIdentity,
} from './routes.ts'
