/**
 * MQTT topic names and filters (MQTT 5.0, OASIS Standard, §4.7) and the bridge's topic mappings
 * (`messaging.mqttMappings`): parsing, validation, filter matching, and which bridge exports a message
 * when several bridge the same broker (rendezvous hashing). Pure functions; mqtt-bridge.ts uses them.
 *
 * A mapping is written `DIRECTION:FILTER=TOPIC`: DIRECTION `in` (MQTT → nodus), `out` (nodus → MQTT)
 * or `both`; FILTER an MQTT topic filter (`+` one level, `#` the rest; everything up to the last `=`);
 * TOPIC the nodus topic (after the last `=`), fixed per mapping. The MQTT topic name travels with
 * each message (batch.ts, version 2), so `in:sensors/#=sensors` puts every `sensors/...` message on
 * nodus topic `sensors` with its MQTT topic, and `out:sensors/#=sensors` sends a message of nodus
 * topic `sensors` to the MQTT topic it carries (when FILTER matches it) or, when FILTER has no
 * wildcard, to FILTER itself.
 */
import { createHash } from 'node:crypto'

/** Which way a mapping bridges. */
export type MqttDirection = 'in' | 'out' | 'both'

/** One `messaging.mqttMappings` entry, parsed. */
export interface MqttMapping {
  direction: MqttDirection
  /** The MQTT topic filter (wildcards `+` and `#` allowed). */
  filter: string
  /** The nodus topic. */
  topic: string
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
 * the whole last level; `$share/...` is refused (the bridge makes its own shared subscriptions).
 * Undefined when fine.
 */
export function mqttFilterProblem(filter: string): string | undefined {
  const p = stringProblem(filter)
  if (p !== undefined) return p
  if (filter.startsWith('$share/')) return 'is a shared subscription (set messaging.mqttShareGroup instead)'
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

/**
 * Parse one mapping `DIRECTION:FILTER=TOPIC` (see the module comment).
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
  const fp = mqttFilterProblem(filter)
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

/** Mappings that import (`in`, `both`). */
export function importsOf(mappings: readonly MqttMapping[]): MqttMapping[] {
  return mappings.filter((m) => m.direction !== 'out')
}

/** Mappings that export (`out`, `both`). */
export function exportsOf(mappings: readonly MqttMapping[]): MqttMapping[] {
  return mappings.filter((m) => m.direction !== 'in')
}

/**
 * The MQTT topics a message of nodus topic `topic` goes to through `exports` (the `out`/`both`
 * mappings): for each mapping of that topic, the MQTT topic the message carries when the mapping's
 * filter matches it, or the filter itself when the message carries none and the filter has no
 * wildcard. Distinct, in mapping order; empty when none applies.
 */
export function exportTopics(
  exports: readonly MqttMapping[],
  topic: string,
  mqttTopic: string | undefined,
): string[] {
  const out: string[] = []
  for (const m of exports) {
    if (m.topic !== topic) continue
    let t: string | undefined
    if (mqttTopic !== undefined) t = mqttTopicMatches(m.filter, mqttTopic) ? mqttTopic : undefined
    else t = hasWildcard(m.filter) ? undefined : m.filter
    if (t !== undefined && !out.includes(t)) out.push(t)
  }
  return out
}

/**
 * The gossip topic a bridge subscribes to while it is connected to `broker` and exports nodus topic
 * `topic`: `/nodus/mqtt-bridge/1/` + hex of the first 16 bytes of SHA-256(`broker` ‖ 0x0a ‖ `topic`).
 * No message travels on it (its validator rejects everything): its subscribers are the bridges that
 * share the exports of `topic` to `broker`.
 */
export function exportMarkerTopic(broker: string, topic: string): string {
  return `/nodus/mqtt-bridge/1/${createHash('sha256').update(`${broker}\n${topic}`).digest('hex').slice(0, 32)}`
}

/**
 * Rendezvous (highest random weight) hashing, Thaler and Ravishankar, "Using name-based mappings to
 * increase hit rates", IEEE/ACM ToN 6(1), 1998: the candidate with the highest SHA-256(`key` ‖ 0x0a ‖
 * candidate) (first 6 bytes, ties to the smaller candidate). Every bridge that sees the same
 * candidates picks the same one; one that sees fewer never misses the overall winner it can see.
 * @param candidates non-empty
 */
export function rendezvousWinner(key: string, candidates: readonly string[]): string {
  let best = candidates[0] as string
  let bestWeight = -1
  for (const c of candidates) {
    const w = createHash('sha256').update(`${key}\n${c}`).digest().readUIntBE(0, 6)
    if (w > bestWeight || (w === bestWeight && c < best)) {
      best = c
      bestWeight = w
    }
  }
  return best
}
