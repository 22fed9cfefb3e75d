/**
 * JSON values: the document as stored (whole-document record plus top-level member records newer than
 * it) and JSONPath queries on it per RFC 9535 through jsonpath-rfc9535 (a parser and interpreter;
 * it never evaluates code).
 *
 * The document is the whole-document value with each newer member set or removed on it. When the
 * whole-document value is not an object (or was removed) and a newer member is set, the document is
 * an object of the newer members.
 */
import { query } from 'jsonpath-rfc9535'
import { NodusError } from '../../common/errors.ts'
import type { OrderedReader } from '../store/ordered.ts'
import { elemKey } from './element.ts'
import { fromUtf8, JSON_MEMBER, JSON_ROOT, prefixEnd } from './keys.ts'
import type { JsonValue } from './ops.ts'
import { openKey, type ReadOptions } from './read.ts'
import { decodeRecord, decodeValue, visible } from './record.ts'

const isObject = (v: JsonValue | undefined): v is { [k: string]: JsonValue } =>
  v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v)

/**
 * The document of a json key from its records, hiding what expired at `nowMs` (or nothing when
 * `nowMs` is undefined, as secondary indexes see it). Undefined when there is none.
 */
export function jsonDocument(
  r: OrderedReader,
  dk: Uint8Array,
  nowMs: number | undefined,
): JsonValue | undefined {
  const now = nowMs ?? Number.NEGATIVE_INFINITY
  const rootBytes = r.get(elemKey(dk, 'json', JSON_ROOT))
  const root = rootBytes === undefined ? undefined : decodeRecord(rootBytes)
  const rootValue =
    root !== undefined && visible(root, now) ? (decodeValue(root.payload) as JsonValue) : undefined
  const prefix = elemKey(dk, 'json', JSON_MEMBER)
  const members: [string, JsonValue | undefined][] = []
  for (const [k, v] of r.range({ start: prefix, end: prefixEnd(prefix) })) {
    const rec = decodeRecord(v)
    members.push([
      fromUtf8(k.subarray(prefix.length)),
      visible(rec, now) ? (decodeValue(rec.payload) as JsonValue) : undefined,
    ])
  }
  const anySet = members.some(([, v]) => v !== undefined)
  if (!isObject(rootValue) && !anySet) return rootValue
  const doc: { [k: string]: JsonValue } = isObject(rootValue) ? { ...rootValue } : {}
  for (const [m, v] of members) {
    if (v === undefined) delete doc[m]
    else doc[m] = v
  }
  return doc
}

/**
 * Evaluate an RFC 9535 JSONPath query (e.g. `$.store.book[?@.price < 10].title`): the values of the
 * nodes it selects, in document order.
 *
 * @throws NodusError `INVALID_ARGUMENT` for a query that is not valid JSONPath
 */
export function jsonQuery(doc: JsonValue, path: string): JsonValue[] {
  try {
    return query(doc, path) as JsonValue[]
  } catch (err) {
    throw new NodusError(
      'INVALID_ARGUMENT',
      `invalid JSONPath ${JSON.stringify(path)}: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }
}

/**
 * JSON.GET: the document of (db, key) (undefined when none), or with `path` the values the JSONPath
 * selects (an empty array when none or no document).
 *
 * @throws NodusError `KV_WRONG_TYPE` (key of another type), `INVALID_ARGUMENT` (bad JSONPath)
 */
export function jsonGet(
  r: OrderedReader,
  db: string,
  key: string,
  options: ReadOptions,
): JsonValue | undefined
export function jsonGet(
  r: OrderedReader,
  db: string,
  key: string,
  options: ReadOptions & { path: string },
): JsonValue[]
export function jsonGet(
  r: OrderedReader,
  db: string,
  key: string,
  options: ReadOptions & { path?: string },
): JsonValue | JsonValue[] | undefined {
  const view = openKey(r, db, key, ['json'], options)
  const doc = view === undefined ? undefined : jsonDocument(r, view.dk, options.nowMs)
  if (options.path === undefined) return doc
  // Parsed even without a document, so a bad query is always an error.
  const selected = jsonQuery(doc ?? null, options.path)
  return doc === undefined ? [] : selected
}
