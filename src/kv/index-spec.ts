/**
 * Secondary indexes declared at a database's `create` (issue 20: "secondary indexes declared per
 * database (a field of JSON or Hash values)"): their wire shape in the create's options map, checked
 * when the operation is decoded, so a host never stores a bad declaration (docs/PROTOCOLS.md, "KV
 * operations", create options).
 *
 * `create` args `[{ indexes: [entry, …] }]`, each entry a map of exactly two keys:
 * - `name`: {@link INDEX_NAME_PATTERN} (1 to 64 ASCII letters, digits, `_`, `.`, `-`; first a letter or
 *   digit), unique within the list;
 * - and either `hash`: a hash field (1 to min(`kv.maxFieldBytes`, 512) UTF-8 bytes): the index holds
 *   that field's value in hash keys; or `json`: an RFC 9535 JSONPath *singular query* (`$` then only
 *   `.name`, `['name']` and `[index]` segments; at most `kv.maxFieldBytes` bytes): the index holds the
 *   one node it selects in JSON documents.
 * - At most {@link MAX_INDEXES} entries. Values that are strings or numbers are indexed.
 *
 * Which create's declarations a database has is index-defs.ts. This module has no store dependency
 * (`nodus/client` uses it).
 */
import parseJsonPath from 'jsonpath-rfc9535/parser'
import { NodusError } from '../common/errors.ts'
import type { Fail } from '../crypto/index.ts'
import type { KvValue } from './op-types.ts'
import { MAX_ELEMENT_BYTES } from './state/keys.ts'
import type { IndexSpec } from './state/secondary.ts'

/** Most indexes one database declares. */
export const MAX_INDEXES = 16
/** An index name: 1 to 64 ASCII letters, digits, `_`, `.`, `-`, the first a letter or digit. */
export const INDEX_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/

const bytes = (s: string): number => Buffer.byteLength(s)

const isMap = (v: unknown): v is { [k: string]: KvValue } =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)

/**
 * True when `path` is an RFC 9535 singular query (section 2.3.5.1): `$` followed only by name and
 * index selectors, one per segment, so it selects at most one node.
 *
 * @throws the error from `fail` when `path` is not valid JSONPath
 */
export function isSingularQuery(path: string, fail: Fail): boolean {
  let ast: ReturnType<typeof parseJsonPath>
  try {
    ast = parseJsonPath(path)
  } catch (err) {
    throw fail(`invalid JSONPath ${JSON.stringify(path.slice(0, 64))}: ${(err as Error).message}`)
  }
  return ast.segments.every((s) => {
    if (s.type !== 'ChildSegment') return false
    if (s.node.type === 'MemberNameShorthand') return true
    if (s.node.type !== 'BracketedSelection' || s.node.selectors.length !== 1) return false
    const t = s.node.selectors[0]?.type
    return t === 'NameSelector' || t === 'IndexSelector'
  })
}

/**
 * Check the `indexes` option of a `create` (undefined: none declared) and return its specs.
 *
 * @param maxFieldBytes - longest hash field or JSONPath, UTF-8 bytes (`kv.maxFieldBytes`; a hash
 *   field is further bounded by 512, the state's element bound)
 * @throws the error from `fail` (KV_OP_INVALID, reject) naming what is wrong
 */
export function parseIndexes(value: KvValue | undefined, maxFieldBytes: number, fail: Fail): IndexSpec[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || value.length > MAX_INDEXES)
    throw fail(`indexes must be a list of at most ${MAX_INDEXES} entries`)
  const names = new Set<string>()
  return value.map((e, i) => {
    if (!isMap(e)) throw fail(`indexes[${i}] must be a map { name, hash } or { name, json }`)
    const keys = Object.keys(e)
    const { name, hash, json } = e
    if (keys.length !== 2 || !keys.includes('name') || (hash === undefined) === (json === undefined))
      throw fail(`indexes[${i}] must have exactly name and one of hash, json`)
    if (typeof name !== 'string' || !INDEX_NAME_PATTERN.test(name))
      throw fail(`indexes[${i}].name must match ${INDEX_NAME_PATTERN}`)
    if (names.has(name)) throw fail(`indexes[${i}].name ${name} is declared twice`)
    names.add(name)
    if (hash !== undefined) {
      const max = Math.min(maxFieldBytes, MAX_ELEMENT_BYTES)
      if (typeof hash !== 'string' || hash === '' || bytes(hash) > max)
        throw fail(`indexes[${i}].hash must be a field of 1 to ${max} bytes`)
      return { name, type: 'hash', field: hash }
    }
    if (typeof json !== 'string' || json === '' || bytes(json) > maxFieldBytes)
      throw fail(`indexes[${i}].json must be a JSONPath of 1 to ${maxFieldBytes} bytes`)
    if (!isSingularQuery(json, fail))
      throw fail(`indexes[${i}].json must be a singular query ($ with .name, ['name'] or [index] only)`)
    return { name, type: 'json', path: json }
  })
}

/** The wire form of `specs`, for a create's options: `{ indexes: … }` (none: `{}`). */
export function indexesOption(specs: readonly IndexSpec[]): { [k: string]: KvValue } {
  if (specs.length === 0) return {}
  return {
    indexes: specs.map((s) =>
      s.type === 'hash' ? { name: s.name, hash: s.field } : { name: s.name, json: s.path },
    ),
  }
}

/**
 * Parse an index as the CLI writes it: `NAME=hash:FIELD` or `NAME=json:PATH` (PATH an RFC 9535
 * singular query, e.g. `$.meta.score`). Checked as a `create` is at decode.
 *
 * @throws NodusError `INVALID_ARGUMENT` naming what is wrong
 */
export function parseIndexText(text: string, maxFieldBytes = MAX_ELEMENT_BYTES): IndexSpec {
  const m = /^([^=]+)=(hash|json):(.+)$/s.exec(text)
  if (m === null)
    throw new NodusError(
      'INVALID_ARGUMENT',
      `index ${JSON.stringify(text)}: give NAME=hash:FIELD or NAME=json:PATH`,
    )
  const [, name, kind, target] = m as unknown as [string, string, 'hash' | 'json', string]
  const fail: Fail = (message) =>
    new NodusError('INVALID_ARGUMENT', `index ${JSON.stringify(text)}: ${message}`)
  return parseIndexes([{ name, [kind]: target }], maxFieldBytes, fail)[0] as IndexSpec
}
