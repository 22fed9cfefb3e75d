/**
 * MQTT 5 topic names, filters and mappings (src/common/mqtt-topic.ts): matching as the standard's
 * examples say, refusing bad names and filters, parsing `DIRECTION:FILTER=TOPIC`.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  mqttFilterProblem,
  mqttTopicMatches,
  mqttTopicProblem,
  mqttUrlProblem,
  parseMqttMapping,
  parseMqttMappings,
} from '../../src/common/mqtt-topic.ts'

describe('MQTT topics', () => {
  it('matches filters as MQTT 5 §4.7 says (its examples)', () => {
    const cases: [string, string, boolean][] = [
      ['sport/tennis/player1/#', 'sport/tennis/player1', true],
      ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
      ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
      ['sport/#', 'sport', true],
      ['#', 'anything/at/all', true],
      ['sport/tennis/+', 'sport/tennis/player1', true],
      ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
      ['sport/+', 'sport', false],
      ['sport/+', 'sport/', true],
      ['+/+', '/finance', true],
      ['/+', '/finance', true],
      ['+', '/finance', false],
      ['sport/tennis', 'sport/tennis', true],
      ['sport/tennis', 'sport/Tennis', false],
      ['#', '$SYS/broker/load', false],
      ['+/monitor/Clients', '$SYS/monitor/Clients', false],
      ['$SYS/#', '$SYS/monitor/Clients', true],
      ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
    ]
    for (const [filter, topic, expected] of cases)
      assert.equal(mqttTopicMatches(filter, topic), expected, `${filter} vs ${topic}`)
  })

  it('refuses bad topic names and filters', () => {
    assert.equal(mqttTopicProblem('a/b c/é'), undefined)
    assert.match(mqttTopicProblem('') ?? '', /empty/)
    assert.match(mqttTopicProblem('a/+') ?? '', /wildcard/)
    assert.match(mqttTopicProblem('a/#') ?? '', /wildcard/)
    assert.match(mqttTopicProblem('a\u0000b') ?? '', /U\+0000/)
    assert.match(mqttTopicProblem('a\ud800') ?? '', /surrogate/)
    assert.match(mqttTopicProblem('x'.repeat(65_536)) ?? '', /65535/)
    for (const ok of ['#', '+', 'a/+/b', 'a/#', '+/+', '/', '$SYS/#'])
      assert.equal(mqttFilterProblem(ok), undefined, ok)
    for (const bad of ['a/#/b', 'a#', 'a/b+', '']) assert.notEqual(mqttFilterProblem(bad), undefined, bad)
  })

  it('parses mappings DIRECTION:FILTER=TOPIC, the nodus topic after the last =', () => {
    assert.deepEqual(parseMqttMapping('in:sensors/#=sensors'), {
      direction: 'in',
      filter: 'sensors/#',
      topic: 'sensors',
    })
    assert.deepEqual(parseMqttMapping('both:a=b/c=d'), { direction: 'both', filter: 'a=b/c', topic: 'd' })
    assert.deepEqual(parseMqttMapping('out:x:y=z'), { direction: 'out', filter: 'x:y', topic: 'z' })
    assert.match(parseMqttMapping('sensors/#=sensors') as string, /DIRECTION:FILTER=TOPIC/)
    assert.match(parseMqttMapping('up:a=b') as string, /in, out or both/)
    assert.match(parseMqttMapping('in:a/#/b=b') as string, /# must be the last/)
    assert.match(parseMqttMapping('in:a=') as string, /nodus topic/)
    assert.match(parseMqttMappings(['in:a=b', 'in:=b']) as string, /empty/)
    assert.match(parseMqttMapping('in:$share/g/a=b') as string, /shared subscription/)
  })

  it('checks broker URLs', () => {
    for (const ok of ['', 'mqtt://h', 'mqtts://h:8883', 'mqtt://u:p@127.0.0.1:1883', 'mqtt://[::1]:1883'])
      assert.equal(mqttUrlProblem(ok), undefined, ok)
    assert.match(mqttUrlProblem('ws://h') ?? '', /mqtt:\/\//)
    assert.match(mqttUrlProblem('h:1883') ?? '', /mqtt:\/\//)
    assert.match(mqttUrlProblem('mqtt://h/x') ?? '', /only/)
    assert.match(mqttUrlProblem('mqtt://h?a=1') ?? '', /only/)
  })
})
