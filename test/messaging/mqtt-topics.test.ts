/**
 * Where the MQTT bridge sends a message and which bridge does (src/messaging/mqtt-topics.ts:
 * export topics, export markers, rendezvous hashing's agreement between bridges), and the `mqtt*`
 * config keys' validation (options.ts).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { exportMarkerTopic, exportTopics, rendezvousWinner } from '../../src/messaging/index.ts'
import { assertProperty } from '../utils/property.ts'
import { messagingOptions } from './peers.ts'

describe('MQTT bridge topics', () => {
  it('gives an exported message the MQTT topic it carries (when the filter matches) or the filter', () => {
    const exports = [
      { direction: 'out' as const, filter: 'lamp/cmd', topic: 'lamp' },
      { direction: 'both' as const, filter: 'sensors/+/set', topic: 'sensors' },
      { direction: 'out' as const, filter: 'sensors/#', topic: 'sensors' },
    ]
    assert.deepEqual(exportTopics(exports, 'lamp', undefined), ['lamp/cmd'])
    assert.deepEqual(exportTopics(exports, 'lamp', 'lamp/cmd'), ['lamp/cmd'])
    assert.deepEqual(exportTopics(exports, 'lamp', 'lamp/other'), [])
    assert.deepEqual(exportTopics(exports, 'sensors', 'sensors/k/set'), ['sensors/k/set'])
    assert.deepEqual(exportTopics(exports, 'sensors', 'sensors/k'), ['sensors/k'])
    assert.deepEqual(exportTopics(exports, 'sensors', undefined), [])
    assert.deepEqual(exportTopics(exports, 'other', 'lamp/cmd'), [])
  })

  it('export markers: one gossip topic per broker and nodus topic', () => {
    const m = exportMarkerTopic('127.0.0.1:1883', 'sensors')
    assert.match(m, /^\/nodus\/mqtt-bridge\/1\/[0-9a-f]{32}$/)
    assert.equal(m, exportMarkerTopic('127.0.0.1:1883', 'sensors'))
    assert.notEqual(m, exportMarkerTopic('127.0.0.1:1884', 'sensors'))
    assert.notEqual(m, exportMarkerTopic('127.0.0.1:1883', 'sensor'))
  })

  it('rendezvous hashing: the winner of a set wins every subset that holds it, whatever the order', () => {
    const set = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 6 })
    assertProperty(
      fc.property(fc.string(), set, fc.func(fc.boolean()), (key, candidates, keep) => {
        const winner = rendezvousWinner(key, candidates)
        assert.ok(candidates.includes(winner))
        assert.equal(rendezvousWinner(key, [...candidates].reverse()), winner)
        const subset = [winner, ...candidates.filter((c) => c !== winner && keep(c))]
        assert.equal(rendezvousWinner(key, subset), winner)
      }),
    )
    // It spreads keys: of 1000 keys over two candidates, each gets a fair share.
    let first = 0
    for (let i = 0; i < 1000; i++) if (rendezvousWinner(`k${i}`, ['a', 'b']) === 'a') first++
    assert.ok(first > 400 && first < 600, `${first}`)
  })
})

describe('mqtt* config keys', () => {
  const refused = (over: Record<string, unknown>): string => {
    try {
      messagingOptions(over)
    } catch (err) {
      assert.ok(isNodusError(err, 'CONFIG_INVALID'), String(err))
      return err.message
    }
    assert.fail('accepted')
  }

  it('are off by default and accept a broker with mappings', () => {
    const o = messagingOptions()
    assert.equal(o.mqttUrl, '')
    assert.deepEqual(o.mqttMappings, [])
    assert.equal(o.mqttQos, 1)
    const on = messagingOptions({ mqttUrl: 'mqtts://broker.example:8883', mqttMappings: ['both:a/#=a'] })
    assert.equal(on.mqttUrl, 'mqtts://broker.example:8883')
  })

  it('refuse a bad URL, a path in it, a bridge without mappings, bad mappings, QoS 2', () => {
    assert.match(refused({ mqttUrl: 'http://x', mqttMappings: ['in:a=b'] }), /mqtt:\/\/ or mqtts:\/\//)
    assert.match(refused({ mqttUrl: 'not a url', mqttMappings: ['in:a=b'] }), /must be a URL/)
    assert.match(refused({ mqttUrl: 'mqtt://host/path', mqttMappings: ['in:a=b'] }), /only mqtt\[s\]/)
    assert.match(refused({ mqttUrl: 'mqtt://host' }), /needs at least one mapping/)
    assert.match(refused({ mqttMappings: ['in:a/#/b=x'] }), /messaging.mqttMappings: .*# must be the last/)
    assert.match(refused({ mqttMappings: [`in:a=${'t'.repeat(300)}`] }), /over messaging.maxTopicBytes/)
    assert.match(refused({ mqttQos: 2 }), /messaging.mqttQos: must be at most 1/)
    assert.match(refused({ mqttShareGroup: 'a/b' }), /mqttShareGroup/)
    assert.match(refused({ mqttPeers: ['not-a-peer'] }), /PeerIds/)
    assert.match(refused({ mqttReconnectMinMs: 5000, mqttReconnectMaxMs: 1000 }), /mqttReconnectMaxMs/)
  })
})
