/**
 * MQTT 5.0 (OASIS Standard) topic names, topic filters and broker URLs: syntax checks and filter
 * matching (§1.5.4, §4.7); and the `DIRECTION:FILTER=TOPIC` syntax of a mapping between MQTT topics
 * and a local topic. For whatever area speaks MQTT (the messaging area's bridge) and its config checks.
 */

/**
 * What is wrong with `v` as an MQTT broker URL, `mqtt[s]://[USER:PASSWORD@]HOST[:PORT]` (empty is
 * fine: no broker), or undefined when fine.
 */
export function mqttUrlProblem(v: string): string | undefined {
  if (v === '') return undefined
  let url: URL
  try {
    url = new URL(v)
  } catch {
    return 'must be a URL, mqtt://HOST:PORT or mqtts://HOST:PORT'
  }
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') return 'must start with mqtt:// or mqtts://'
  if (url.hostname === '') return 'needs a host'
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '')
    return 'must be only mqtt[s]://[USER:PASSWORD@]HOST[:PORT]'
  return undefined
}

/** MQTT's limit on any UTF-8 string, topic names and filters included (MQTT 5 §1.5.4), bytes. */
const MAX_MQTT_STRING_BYTES = 65_535

function stringProblem(s: string): string | undefined {
  if (s.length === 0) return 'is empty'
  if (!s.isWellFormed()) return 'is not valid UTF-8 (a lone surrogate)'
  if (s.includes('\0')) return 'contains U+0000'
  if (Buffer.byteLength(s, 'utf8') > MAX_MQTT_STRING_BYTES) return `is over ${MAX_MQTT_STRING_BYTES} bytes`
  return undefined
}

/**
 * What is wrong with `topic` as an MQTT topic name (what a PUBLISH carries): empty, over 65,535 UTF-8
 * bytes, a lone surrogate, U+0000, or a wildcard (`+`, `#`). Undefined when fine.
 */
export function mqttTopicProblem(topic: string): string | undefined {
  const p = stringProblem(topic)
  if (p !== undefined) return p
  if (topic.includes('+') || topic.includes('#')) return 'contains a wildcard (+ or #)'
  return undefined
}

/**
 * What is wrong with `filter` as an MQTT topic filter: as a name, but `+` must be a whole level and `#`
 * the whole last level. Undefined when fine.
 */
export function mqttFilterProblem(filter: string): string | undefined {
  const p = stringProblem(filter)
  if (p !== undefined) return p
  const levels = filter.split('/')
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i] as string
    if (l === '#' && i !== levels.length - 1) return '# must be the last level'
    if (l !== '+' && l !== '#' && (l.includes('+') || l.includes('#')))
      return 'a wildcard (+ or #) must be a whole level'
  }
  return undefined
}

/** Does `filter` contain a wildcard? */
export function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#')
}

/**
 * Does MQTT topic name `topic` match `filter` (MQTT 5 §4.7.1–4.7.2)? `+` matches one level, `#` the
 * parent level and every level below (`a/#` matches `a`), and a topic starting with `$` is not matched
 * by a filter starting with a wildcard.
 */
export function mqttTopicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    const level = f[i] as string
    if (level === '#') return true
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return f.length === t.length
}

/** Which way a mapping bridges. */
export type MqttDirection = 'in' | 'out' | 'both'

/** One mapping between MQTT topics and a local topic (the messaging area's `messaging.mqttMappings`), parsed. */
export interface MqttMapping {
  direction: MqttDirection
  /** The MQTT topic filter (wildcards `+` and `#` allowed). */
  filter: string
  /** The nodus topic. */
  topic: string
}

/**
 * Parse one mapping `DIRECTION:FILTER=TOPIC`: DIRECTION `in` (MQTT → local), `out` (local → MQTT) or
 * `both`; FILTER an MQTT topic filter (everything up to the last `=`; not `$share/...`, shared
 * subscriptions are the bridge's to make); TOPIC the local (nodus) topic, after the last `=`, not
 * empty, no control characters (its length is the caller's to check).
 * @returns the mapping, or the problem with it as a string
 */
export function parseMqttMapping(s: string): MqttMapping | string {
  const colon = s.indexOf(':')
  const eq = s.lastIndexOf('=')
  if (colon < 0 || eq < colon) return `"${s}" is not DIRECTION:FILTER=TOPIC`
  const direction = s.slice(0, colon)
  if (direction !== 'in' && direction !== 'out' && direction !== 'both')
    return `"${s}": direction must be in, out or both`
  const filter = s.slice(colon + 1, eq)
  const topic = s.slice(eq + 1)
  const fp = filter.startsWith('$share/')
    ? 'is a shared subscription (the bridge makes its own: messaging.mqttShareGroup)'
    : mqttFilterProblem(filter)
  if (fp !== undefined) return `"${s}": the MQTT filter ${fp}`
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (topic.length === 0 || /[\u0000-\u001f\u007f]/.test(topic))
    return `"${s}": the nodus topic is empty or has control characters`
  return { direction, filter, topic }
}

/** Parse every mapping; the first problem as a string (for the option's check). */
export function parseMqttMappings(values: readonly string[]): MqttMapping[] | string {
  const out: MqttMapping[] = []
  for (const v of values) {
    const m = parseMqttMapping(v)
    if (typeof m === 'string') return m
    out.push(m)
  }
  return out
}
