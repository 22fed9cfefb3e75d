/**
 * The kv GraphQL schema (SDL) and its scalars. Reads follow Redis's commands and semantics (the state
 * readers in state/); every read takes the database id `db` and sees the node's state at the time of
 * the request, with what expired hidden. docs/API.md, "GraphQL (kv)", lists it with examples.
 */
import { GraphQLScalarType, valueFromASTUntyped } from 'graphql'
import { valueToJson } from './routes.ts'

/**
 * `JSON`: any kv value. Strings, numbers, booleans, null, lists and maps as they are; bytes as
 * `{ "$bytes": "<base64>" }` (as `GET /kv/:db/:key` writes them).
 */
export const JsonScalar = new GraphQLScalarType({
  name: 'JSON',
  description: 'A kv value: JSON, with bytes as { "$bytes": "<base64>" }',
  serialize: (v) => valueToJson(v),
  parseValue: (v) => v,
  parseLiteral: (ast, variables) => valueFromASTUntyped(ast, variables),
})

/** Redis's text of an infinite score. */
const scoreText = (v: number): number | string =>
  v === Number.POSITIVE_INFINITY ? '+inf' : v === Number.NEGATIVE_INFINITY ? '-inf' : v

/** `Score`: a sorted-set score: a number, or `"+inf"` / `"-inf"` (GraphQL's Float has no infinities). */
export const ScoreScalar = new GraphQLScalarType({
  name: 'Score',
  description: 'A sorted-set score: a number, or "+inf" / "-inf"',
  serialize: (v) => scoreText(v as number),
})

/** The schema, in SDL. */
export const KV_SDL = /* GraphQL */ `
scalar JSON
scalar Score

"The value types of a database."
enum KvType { string hash list set zset json stream ts geo }
"TS.RANGE aggregations over buckets of bucketMs."
enum TsAggregation { avg sum min max count first last }
"Distance units (Redis's M, KM, FT, MI)."
enum GeoUnit { m km ft mi }
"GEOSEARCH ASC / DESC (by distance)."
enum GeoOrder { asc desc }

"A hybrid logical clock timestamp: Unix ms and a counter; ordered by (ms, c)."
type Hlc { ms: Float! c: Int! }
input HlcInput { ms: Float! c: Int = 0 }

type HashField { field: String! value: JSON }
"A list element: its id (45 bytes, hex; lrem and lset name it) and value."
type ListElement { id: String! value: JSON }
type ZMember { member: String! score: Score! }
"A stream entry: its id <ms>-<seq> and its field/value list as added."
type StreamEntry { id: String! fields: JSON! }
"A time-series sample (Unix ms), or an aggregation bucket (its start)."
type Sample { timestamp: Float! value: Float! }
type GeoPos { lon: Float! lat: Float! }
type GeoHit { member: String! distance: Float! lon: Float! lat: Float! score: Float! }
"One page of scan: pass cursor as after for the next; absent at the end."
type ScanPage { keys: [String!]! cursor: String }
"PEXPIRETIME: expireAt Unix ms (absent: never expires); ttlMs = expireAt - now."
type Ttl { exists: Boolean! expireAt: Float ttlMs: Float }
"An operation of the log: id (hex), HLC, the signed envelope (base64) and its body."
type LoggedOp { id: String! hlc: Hlc! envelope: String! body: JSON! }
"One page of opsSince: pass cursor for the next; absent when none followed."
type OpPage { ops: [LoggedOp!]! cursor: String }

"An applied operation, as subscribers see it. type db: create, grant, revoke."
type KvEvent {
  db: String!
  key: String!
  field: String
  type: String!
  op: String!
  args: JSON!
  hlc: Hlc!
  expireAt: Float
  "Op id, hex."
  id: String!
  "The signer's public key, base64."
  signer: String!
  "local (this node's API), gossip or sync."
  source: String!
  "Whether the visible state changed."
  changed: Boolean!
}

"A private database's key shares sealed to one X-Wing key: signed share envelopes (base64), which the reader verifies."
type DbShares { db: String! sealed: Boolean! shares: [String!]! }
"A node's X-Wing key record (public part), to seal a share to: keyId hex, xwing base64, notBefore/notAfter Unix ms."
type ReaderKey { peer: String! keyId: String! epoch: Int! xwing: String! notBefore: Float! notAfter: Float! }

"What became of a submitted operation: status applied, duplicate or refused (with code and message)."
type SubmitResult { id: String status: String! code: String message: String }

"""
Reads. Every field is nullable, so one read's error (with its code in extensions) leaves the
others' answers in place.
"""
type Query {
  "The databases this node hosts or keeps."
  databases: [String!]
  "A database's status here: hosted, ops held, last sync."
  database(db: String!): JSON
  "TYPE: string, hash, list, set, zset, json, stream, ts, geo, or none."
  keyType(db: String!, key: String!): String
  get(db: String!, key: String!): JSON
  hget(db: String!, key: String!, field: String!): JSON
  hgetall(db: String!, key: String!): [HashField!]
  "LRANGE: indexes inclusive, negative from the end."
  lrange(db: String!, key: String!, start: Int = 0, stop: Int = -1): [ListElement!]
  smembers(db: String!, key: String!): [String!]
  sismember(db: String!, key: String!, member: String!): Boolean
  """
  ZRANGE key start stop [BYSCORE] [REV] [LIMIT offset count]: ranks, or with byScore score bounds
  ("(" for exclusive, "-inf", "+inf"); with rev and byScore, start is the max (as Redis).
  """
  zrange(db: String!, key: String!, start: String!, stop: String!, byScore: Boolean = false, rev: Boolean = false, offset: Int, count: Int): [ZMember!]
  zscore(db: String!, key: String!, member: String!): Score
  "JSON.GET: the document, or with path the values an RFC 9535 JSONPath selects."
  jsonGet(db: String!, key: String!, path: String): JSON
  "XRANGE: bounds -, +, <ms>, <ms>-<seq>, ( to exclude."
  xrange(db: String!, key: String!, start: String = "-", end: String = "+", count: Int): [StreamEntry!]
  xrevrange(db: String!, key: String!, end: String = "+", start: String = "-", count: Int): [StreamEntry!]
  "TS.RANGE from to [AGGREGATION aggregation bucketMs] [COUNT count] (Unix ms, inclusive)."
  tsRange(db: String!, key: String!, from: Float = 0, to: Float, aggregation: TsAggregation, bucketMs: Float, count: Int): [Sample!]
  "TS.GET: the latest sample."
  tsGet(db: String!, key: String!): Sample
  geopos(db: String!, key: String!, members: [String!]!): [GeoPos]
  geodist(db: String!, key: String!, member1: String!, member2: String!, unit: GeoUnit = m): Float
  "GEOSEARCH: from member or lon/lat; by radius or width/height."
  geosearch(db: String!, key: String!, member: String, lon: Float, lat: Float, radius: Float, width: Float, height: Float, unit: GeoUnit = m, order: GeoOrder, count: Int): [GeoHit!]
  "SCAN: keys by prefix, after key after (the cursor), of one type."
  scan(db: String!, prefix: String, after: String, type: KvType, limit: Int = 100): ScanPage
  "Keys whose indexed value (a declared secondary index) equals eq, or lies within the bounds."
  byIndex(db: String!, name: String!, eq: JSON, gt: JSON, gte: JSON, lt: JSON, lte: JSON, limit: Int = 100): [String!]
  "When a key, or one field or member, expires."
  ttl(db: String!, key: String!, field: String): Ttl
  "The op log from an HLC on (inclusive), in (HLC, id) order."
  opsSince(db: String!, after: HlcInput, cursor: String, limit: Int = 100): OpPage
  "Whether a database is private, and the share operations sealed to the X-Wing key kid (64 hex)."
  shares(db: String!, kid: String!): DbShares
  "A node's X-Wing key record (this node's, or one found in the DHT), to share a private database with it."
  readerKey(peer: String!): ReaderKey
}

type Mutation {
  "Apply one signed operation (a base64 envelope). Needs the API token."
  submitOperation(envelope: String!): SubmitResult!
  "Apply signed operations, each with its own result (at most 1,024). Needs the API token."
  submitOperations(envelopes: [String!]!): [SubmitResult!]!
}

type Subscription {
  "Operations applied to one key."
  keyChanged(db: String!, key: String!): KvEvent!
  "Operations applied to a database (its keys, and its create, grant and revoke)."
  dbChanged(db: String!): KvEvent!
  "Operations applied to the keys of a database that start with prefix."
  pattern(db: String!, prefix: String!): KvEvent!
}
`
