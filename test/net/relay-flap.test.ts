import assert from 'node:assert/strict'
import { test } from 'node:test'
import { RelayFlapGuard } from '../../src/net/relay-flap.ts'

function guard(configured: string[] = [], maxTracked?: number) {
  const clock = { t: 1_000_000, now: () => clock.t }
  const g = new RelayFlapGuard({
    configured,
    clock,
    minHoldMs: 30_000,
    backoffMs: 60_000,
    maxBackoffMs: 200_000,
    ...(maxTracked === undefined ? {} : { maxTracked }),
  })
  return { g, clock }
}

test('a discovered relay dropping its reservation soon after it appeared is refused, for longer each time', () => {
  const { g, clock } = guard()
  g.update(['H'])
  clock.t += 200
  assert.deepEqual(g.update([]), ['H'])
  assert.ok(g.denied('H'))
  clock.t += 59_999
  assert.ok(g.denied('H'))
  clock.t += 2
  assert.ok(!g.denied('H'), 'the first refusal lasts backoffMs')
  g.update(['H'])
  clock.t += 1_000
  g.update([])
  clock.t += 119_999
  assert.ok(g.denied('H'), 'the second strike doubles it')
  clock.t += 2
  assert.ok(!g.denied('H'))
  for (let i = 0; i < 5; i++) {
    g.update(['H'])
    g.update([])
  }
  clock.t += 199_999
  assert.ok(g.denied('H'))
  clock.t += 2
  assert.ok(!g.denied('H'), 'capped at maxBackoffMs')
})

test('a reservation held past minHoldMs, a configured relay, and relays never seen are not refused', () => {
  const { g, clock } = guard(['C'])
  g.update(['G', 'C'])
  clock.t += 30_000
  assert.deepEqual(g.update(['C']), [], 'G held 30 s: no strike')
  assert.ok(!g.denied('G'))
  g.update([])
  assert.ok(!g.denied('C'), 'configured relays are the watchdog’s')
  assert.ok(!g.denied('X'))
})

test('state is bounded: the oldest relay is forgotten', () => {
  const { g, clock } = guard([], 2)
  g.update(['A'])
  g.update(['A', 'B'])
  g.update(['A', 'B', 'C'])
  clock.t += 10
  assert.deepEqual(g.update([]).sort(), ['B', 'C'], 'A was forgotten when C came')
  assert.ok(!g.denied('A'))
})
