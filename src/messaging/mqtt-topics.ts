/**
 * MQTT topic filters (MQTT 5.0, OASIS Standard, §4.7) and the bridge's topic mappings
 * (`messaging.mqttMappings`, parsed and validated by options.ts): filter matching, where a message
 * goes out, and which bridge exports a message when several bridge the same broker (rendezvous
 * hashing). Pure functions; mqtt-bridge.ts uses them.
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
import { hasWildcard, type MqttMapping, mqttTopicMatches } from '../common/mqtt-topic.ts'

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
