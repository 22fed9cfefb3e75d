import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, createServer } from 'node:net'
import { test } from 'node:test'
import { unlistened } from '../../src/net/area.ts'
import {
  closesWithReset,
  DCUTR_PROTOCOL,
  type IdentifyObservation,
  ObservedTcpAddrs,
  observerGroup,
  PrivateDialFilter,
  type PunchConnection,
  PunchCoordinator,
  pickDialPort,
  REFUSED_REDIALS,
  tcpFromDialPort,
  withFreshDialBack,
  withPunchAddrs,
  withPunchCoordinator,
} from '../../src/net/holepunch.ts'
import { isPublicAddr } from '../../src/net/reachability.ts'
import { waitFor } from '../utils/wait.ts'

/** Each test observer's own public IP address (a distinct host per peer name). */
const hosts = new Map<string, string>()
const hostOf = (peer: string): string => {
  let h = hosts.get(peer)
  if (h === undefined) {
    h = `/ip4/11.18.0.${10 + hosts.size}/tcp/4001`
    hosts.set(peer, h)
  }
  return h
}

const obs = (
  peer: string,
  observed: string,
  direction = 'outbound',
  remote = hostOf(peer),
): IdentifyObservation => ({
  peerId: peer,
  observedAddr: observed,
  connection: { direction: direction as 'outbound', remoteAddr: remote as never },
})

test('observed TCP address: used once two distinct peers agree (cone NAT), never for per-peer ports (symmetric)', () => {
  let now = 0
  const seen = new ObservedTcpAddrs({ clock: { now: () => now }, ttlMs: 1000 })
  seen.record(obs('p0', '/ip4/11.18.0.101/tcp/40001'))
  seen.record(obs('p0', '/ip4/11.18.0.101/tcp/40001'))
  assert.deepEqual(seen.agreed(), [], 'one peer, however often, is not enough')
  seen.record(obs('p1', '/ip4/11.18.0.101/tcp/40001/p2p/12D3KooWSelf'))
  assert.deepEqual(seen.agreed(), ['/ip4/11.18.0.101/tcp/40001'])
  // Symmetric NAT: each peer sees another port.
  const sym = new ObservedTcpAddrs({ clock: { now: () => now } })
  sym.record(obs('p0', '/ip4/11.18.0.103/tcp/51000'))
  sym.record(obs('p1', '/ip4/11.18.0.103/tcp/62000'))
  assert.deepEqual(sym.agreed(), [])
  // Observations expire.
  now = 1001
  assert.deepEqual(seen.agreed(), [])
  // ... but not while their connections are open (identify reports once per connection: a node up
  // longer than the TTL lost its agreed address and never punched again, seen after 10 min).
  const live = new ObservedTcpAddrs({ clock: { now: () => now }, ttlMs: 1000 })
  const conns = ['p0', 'p1'].map((p) => {
    const o = obs(p, '/ip4/11.18.0.101/tcp/40001')
    const c = { ...o.connection, status: 'open' }
    live.record({ ...o, connection: c })
    return c
  })
  now += 10_000
  assert.deepEqual(live.agreed(), ['/ip4/11.18.0.101/tcp/40001'])
  for (const c of conns) c.status = 'closed'
  assert.deepEqual(live.agreed(), [])
})

test('observed TCP address: inbound, relayed, QUIC and WebSockets connections do not count', () => {
  const seen = new ObservedTcpAddrs({ clock: { now: () => 0 } })
  for (const p of ['a', 'b']) {
    seen.record(obs(p, '/ip4/11.18.0.101/tcp/1', 'inbound'))
    seen.record(
      obs(p, '/ip4/11.18.0.101/tcp/2', 'outbound', '/ip4/11.18.0.10/tcp/4001/p2p/R/p2p-circuit/p2p/X'),
    )
    seen.record(obs(p, '/ip4/11.18.0.101/tcp/3', 'outbound', '/ip4/11.18.0.10/udp/4001/quic-v1'))
    seen.record(obs(p, '/ip4/11.18.0.101/tcp/4', 'outbound', '/ip4/11.18.0.10/tcp/4002/ws'))
    seen.record(obs(p, '/ip4/11.18.0.101/udp/5/quic-v1'))
  }
  assert.deepEqual(seen.agreed(), [])
})

test('observed TCP address: Sybil peers on one host count once, and the address most hosts see comes first', () => {
  const seen = new ObservedTcpAddrs({ clock: { now: () => 0 } })
  // Three PeerIds on one host (and two on one IPv6 /64) agree on a false address: still one observer.
  for (const p of ['s1', 's2', 's3'])
    seen.record(obs(p, '/ip4/6.6.6.6/tcp/666', 'outbound', '/ip4/203.0.113.9/tcp/4001'))
  for (const p of ['s4', 's5'])
    seen.record(obs(p, '/ip4/6.6.6.6/tcp/666', 'outbound', `/ip6/2001:db8:1:2::${p}/tcp/4001`))
  assert.deepEqual(seen.agreed(), ['/ip4/6.6.6.6/tcp/666'], 'two hosts: one IPv4, one IPv6 /64')
  // Three honest hosts see the true address: it comes first, so DCUtR dials it first.
  for (const p of ['h1', 'h2', 'h3']) seen.record(obs(p, '/ip4/11.18.0.101/tcp/40001'))
  assert.deepEqual(seen.agreed(), ['/ip4/11.18.0.101/tcp/40001', '/ip4/6.6.6.6/tcp/666'])
  // One host alone never makes an address agreed, however many PeerIds it has.
  const one = new ObservedTcpAddrs({ clock: { now: () => 0 } })
  for (let i = 0; i < 20; i++)
    one.record(obs(`s${i}`, '/ip4/6.6.6.6/tcp/666', 'outbound', '/ip4/203.0.113.9/tcp/4001'))
  assert.deepEqual(one.agreed(), [])
  assert.equal(observerGroup('/ip6/2001:db8:1:2:aa::1/tcp/1'), '2001:db8:1:2::/64')
  assert.equal(observerGroup('/ip4/1.2.3.4/tcp/1/p2p/X'), '1.2.3.4')
  assert.equal(observerGroup('/dns4/example.org/tcp/1'), '/dns4/example.org')
})

test('observed TCP address: at most maxAddrs remembered, the oldest dropped first', () => {
  const seen = new ObservedTcpAddrs({ clock: { now: () => 0 }, maxAddrs: 2 })
  for (const port of [1, 2, 3])
    for (const p of ['a', 'b']) seen.record(obs(p, `/ip4/11.18.0.101/tcp/${port}`))
  assert.deepEqual(
    seen.agreed(),
    ['/ip4/11.18.0.101/tcp/3', '/ip4/11.18.0.101/tcp/2'],
    'ties: the newest first',
  )
})

test('private dial filter: another site’s private address refused; own subnets, loopback, public and relayed allowed', () => {
  const f = new PrivateDialFilter(
    isPublicAddr,
    () => ({
      lo: [{ cidr: '127.0.0.1/8' }],
      eth0: [{ cidr: '10.0.1.2/24' }, { cidr: null }],
    }),
    { now: () => 0 },
  )
  assert.equal(f.deny('/ip4/10.0.2.2/tcp/4001/p2p/X'), true)
  assert.equal(f.deny('/ip4/10.0.2.2/udp/4001/quic-v1'), true)
  assert.equal(f.deny('/ip4/192.168.1.5/tcp/4001'), true)
  assert.equal(f.deny('/ip4/10.0.1.7/tcp/4001'), false, 'same LAN')
  assert.equal(f.deny('/ip4/127.0.0.1/tcp/4001'), false)
  assert.equal(f.deny('/ip4/11.18.0.10/tcp/4001'), false, 'public')
  assert.equal(
    f.deny('/ip4/10.0.2.2/tcp/4001/p2p/R/p2p-circuit/p2p/X'),
    false,
    'a relay address is dialed at the relay',
  )
  assert.equal(f.deny('/dns4/example.org/tcp/4001'), false)
})

test('unlistened: direct listen addresses without a listener, wildcard hosts and port 0 matched, relays ignored', () => {
  const listening = [
    '/ip4/10.0.1.2/tcp/4001',
    '/ip4/10.0.1.2/udp/4001/quic-v1',
    '/ip4/127.0.0.1/tcp/33333/ws',
  ]
  assert.deepEqual(
    unlistened(
      [
        '/ip4/10.0.1.2/tcp/4001',
        '/ip4/0.0.0.0/udp/4001/quic-v1',
        '/ip4/127.0.0.1/tcp/0/ws',
        '/ip4/11.18.0.10/tcp/4001/p2p/R/p2p-circuit',
      ],
      listening,
    ),
    [],
  )
  assert.deepEqual(
    unlistened(
      ['/ip4/10.0.1.2/tcp/4002', '/ip4/10.0.1.2/udp/0/quic-v1', '/ip4/10.0.1.2/tcp/0'],
      ['/ip4/10.0.1.2/tcp/4001/ws'],
    ),
    ['/ip4/10.0.1.2/tcp/4002', '/ip4/10.0.1.2/udp/0/quic-v1', '/ip4/10.0.1.2/tcp/0'],
  )
})

test('DCUtR components: agreed addresses added to getAddresses; an address list dialed outside the queue, signal unlinked', async () => {
  const dialed: Array<{ ma: string; signal: AbortSignal }> = []
  const queued: unknown[] = []
  let refusals = 3
  const components = {
    peerId: 'SELF',
    addressManager: {
      getAddresses: () => [{ toString: () => '/ip4/10.0.1.2/tcp/4001/p2p/SELF', encapsulate: () => 0 }],
    },
    connectionManager: {
      openConnection: async (a: unknown, _o?: Record<string, unknown>) => {
        queued.push(a)
        return 'queued'
      },
    },
    transportManager: {
      dial: async (ma: unknown, o?: Record<string, unknown>) => {
        dialed.push({ ma: String(ma), signal: o?.signal as AbortSignal })
        if (String(ma).includes('bad')) throw new Error('unreachable')
        if (String(ma).includes('rst') && dialed.filter((d) => d.ma === String(ma)).length <= refusals)
          throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
        return 'direct'
      },
    },
  }
  const c = withPunchAddrs(
    components,
    () => ['/ip4/11.18.0.101/tcp/40001'],
    (s) => ({ toString: () => s }),
  )
  assert.deepEqual(c.addressManager.getAddresses().map(String), [
    '/ip4/10.0.1.2/tcp/4001/p2p/SELF',
    '/ip4/11.18.0.101/tcp/40001/p2p/SELF',
  ])
  const given = new AbortController()
  assert.equal(
    await c.connectionManager.openConnection(['bad', 'good'], { signal: given.signal, force: true }),
    'direct',
  )
  assert.deepEqual(
    dialed.map((d) => d.ma),
    ['bad', 'good'],
  )
  given.abort()
  assert.equal(dialed[1]?.signal.aborted, false, 'the connection made outlives the DCUtR timeout')
  await assert.rejects(c.connectionManager.openConnection(['bad'], {}), /every dial failed/)
  assert.equal(
    await c.connectionManager.openConnection('peer-id'),
    'queued',
    'a dial by peer goes to the queue',
  )
  assert.deepEqual(queued, ['peer-id'])
  // A RST (the peer's router before the peer's SYN left): the same address again, at most REFUSED_REDIALS times.
  dialed.length = 0
  assert.equal(await c.connectionManager.openConnection(['rst'], {}), 'direct')
  assert.equal(dialed.length, 4, 'refused 3 times, then connected')
  dialed.length = 0
  refusals = 100
  await assert.rejects(c.connectionManager.openConnection(['rst'], {}), /every dial failed/)
  assert.equal(dialed.length, REFUSED_REDIALS + 1)
})

test('AutoNAT components: a single-address dial-back is forced; peer and list dials are not', async () => {
  const calls: Array<Record<string, unknown> | undefined> = []
  const c = withFreshDialBack({
    connectionManager: {
      openConnection: async (_a: unknown, o?: Record<string, unknown>) => {
        calls.push(o)
        return 'c'
      },
    },
  })
  await c.connectionManager.openConnection({ bytes: new Uint8Array() }, { signal: 'S' })
  await c.connectionManager.openConnection([{ bytes: new Uint8Array() }], { signal: 'S' })
  assert.deepEqual(calls, [{ signal: 'S', force: true }, { signal: 'S' }])
})

test('pickDialPort: a port that was free (a listener can take it)', async () => {
  const port = await pickDialPort('127.0.0.1')
  assert.ok(port > 0 && port < 65536)
  const srv = createServer()
  await new Promise<void>((res, rej) => {
    srv.once('error', rej)
    srv.listen(port, '127.0.0.1', () => res())
  })
  await new Promise((r) => srv.close(r))
})

test('TCP dials from the dial port; a taken 4-tuple falls back to an ephemeral port; initiator false upgrades as inbound', async () => {
  const seen: Array<{ localPort: unknown; direction?: string }> = []
  let fail = true
  const factory = () =>
    ({
      dial: async (_ma: unknown, o: Record<string, unknown>) => {
        if (o.localPort !== undefined && fail) {
          fail = false
          throw Object.assign(new Error('connect EADDRNOTAVAIL'), { code: 'EADDRNOTAVAIL' })
        }
        const maConn = { direction: 'outbound' }
        await (o.upgrader as { upgradeOutbound(m: unknown, x: unknown): Promise<unknown> }).upgradeOutbound(
          maConn,
          o,
        )
        seen.push({ localPort: o.localPort, direction: maConn.direction })
        return 'conn'
      },
    }) as never
  const upgrader = { upgradeOutbound: async () => 'up' }
  const t = tcpFromDialPort(factory, () => 40001)(undefined as never)
  await t.dial('ma' as never, { upgrader } as never)
  await t.dial('ma' as never, { upgrader } as never)
  await t.dial('ma' as never, { upgrader, initiator: false } as never)
  assert.deepEqual(seen, [
    { localPort: undefined, direction: 'outbound' },
    { localPort: 40001, direction: 'outbound' },
    { localPort: 40001, direction: 'inbound' },
  ])
  const other = tcpFromDialPort(
    () =>
      ({
        dial: async () => {
          throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
        },
      }) as never,
    () => 40001,
  )(undefined as never)
  await assert.rejects(
    other.dial('ma' as never, { upgrader } as never),
    /ECONNREFUSED/,
    'other errors are not retried',
  )
})

/** A relayed (or direct) connection to `peer` as PunchCoordinator reads it. */
const conn = (
  peer: string,
  relayed = true,
  direction: 'inbound' | 'outbound' = 'inbound',
): PunchConnection => ({
  remotePeer: { toString: () => peer },
  remoteAddr: {
    toString: () =>
      relayed ? `/ip4/11.18.0.10/tcp/4001/p2p/R/p2p-circuit/p2p/${peer}` : '/ip4/11.18.0.102/tcp/40001',
  },
  direction,
  status: 'open',
})

/** A coordinator over a fake node: `open` its connections, `runs` the B runs started (settle them by hand). */
function coordinatorOf(self: string, rounds = 4) {
  const open: PunchConnection[] = []
  const runs: Array<{ c: PunchConnection; done: () => void }> = []
  const outcomes: string[] = []
  const co = new PunchCoordinator({
    self,
    connections: (peer) => open.filter((c) => c.remotePeer.toString() === peer),
    upgrade: async (c) => await new Promise<void>((done) => runs.push({ c, done })),
    rounds,
    backoffMs: 1000,
    random: () => 0.5,
    onRound: (r) => outcomes.push(r),
  })
  return { co, open, runs, outcomes }
}

/** Lets the promise callbacks of a settled run go (microtasks only; no time passes). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

test('punch coordinator: one B run per peer; a second relayed connection waits for it; none once direct', async () => {
  const { co, open, runs, outcomes } = coordinatorOf('S')
  const c1 = conn('P')
  const c2 = conn('P')
  open.push(c1, c2)
  co.onRelayed(c1)
  co.onRelayed(c2)
  assert.equal(runs.length, 1, 'the second waits')
  assert.deepEqual(outcomes, ['busy'])
  // The first run punched: a direct connection now exists, so the waiting one never runs.
  open.push(conn('P', false, 'outbound'))
  runs[0]?.done()
  await settle()
  assert.equal(runs.length, 1)
  assert.deepEqual(outcomes, ['busy', 'direct'])
  assert.equal(co.active, 0)
  // Outbound and direct connections are not DCUtR's B side.
  co.onRelayed(conn('Q', true, 'outbound'))
  co.onRelayed(conn('Q', false))
  assert.equal(runs.length, 1)
})

test('punch coordinator: a waiting relayed connection runs when the run with its peer failed', async () => {
  const { co, open, runs } = coordinatorOf('S')
  const c1 = conn('P')
  const c2 = conn('P')
  open.push(c1, c2)
  co.onRelayed(c1)
  co.onRelayed(c2)
  runs[0]?.done()
  await settle()
  assert.equal(runs.length, 2)
  assert.equal(runs[1]?.c, c2)
  co.stop()
})

test('punch coordinator: side A refused while this node runs B with a higher peer, or is direct; else answered', async () => {
  const low = coordinatorOf('A-low')
  low.open.push(conn('B-high'))
  low.co.onRelayed(low.open[0] as PunchConnection)
  let refused = 0
  let answered = 0
  await low.co.onRequest(
    conn('B-high'),
    async () => {
      answered++
    },
    () => {
      refused++
    },
  )
  assert.deepEqual([answered, refused], [0, 1], 'the lower PeerId keeps its own run')
  const high = coordinatorOf('C-high')
  high.open.push(conn('B-mid'))
  high.co.onRelayed(high.open[0] as PunchConnection)
  await high.co.onRequest(
    conn('B-mid'),
    async () => {
      answered++
    },
    () => {
      refused++
    },
  )
  assert.deepEqual([answered, refused], [1, 1], 'the higher PeerId answers the peer’s run')
  // A second request while answering one is refused; none at all once direct.
  const idle = coordinatorOf('S')
  let release = (): void => {}
  const first = idle.co.onRequest(
    conn('P'),
    async () =>
      await new Promise<void>((r) => {
        release = r
      }),
    () => {
      refused++
    },
  )
  await idle.co.onRequest(
    conn('P'),
    async () => {
      answered++
    },
    () => {
      refused++
    },
  )
  assert.deepEqual([answered, refused], [1, 2])
  release()
  await first
  idle.open.push(conn('P', false))
  await idle.co.onRequest(
    conn('P'),
    async () => {
      answered++
    },
    () => {
      refused++
    },
  )
  assert.deepEqual([answered, refused], [1, 3])
  low.co.stop()
  high.co.stop()
})

test('punch coordinator: rounds while relayed, 1 s then 2 s then 4 s apart, at most `rounds`', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const { co, open, runs, outcomes } = coordinatorOf('S', 4)
  const c = conn('P')
  open.push(c)
  co.onRelayed(c)
  for (const [round, wait] of [
    [2, 1000],
    [3, 2000],
    [4, 4000],
  ] as const) {
    runs.at(-1)?.done()
    await settle()
    t.mock.timers.tick(wait - 1)
    assert.equal(runs.length, round - 1, `round ${round} not before ${wait} ms`)
    t.mock.timers.tick(1)
    assert.equal(runs.length, round, `round ${round} after ${wait} ms`)
  }
  runs.at(-1)?.done()
  await settle()
  t.mock.timers.tick(60_000)
  assert.equal(runs.length, 4, 'no fifth round')
  assert.deepEqual(outcomes, ['failed', 'failed', 'failed', 'failed'])
  // A closed connection and stop() end the rounds.
  const d = conn('Q')
  open.push(d)
  co.onRelayed(d)
  runs.at(-1)?.done()
  await settle()
  co.stop()
  t.mock.timers.tick(60_000)
  assert.equal(runs.length, 5)
})

test('DCUtR registrar: its topology and handler go through the coordinator, other protocols pass', async () => {
  const registered: Record<string, { onConnect?(p: unknown, c: unknown): void }> = {}
  const handlers: Record<string, (s: unknown, c: unknown) => unknown> = {}
  const components = {
    registrar: {
      register: async (p: string, topology: { onConnect?(p: unknown, c: unknown): void }) => {
        registered[p] = topology
        return 'id'
      },
      handle: async (p: string, h: (s: unknown, c: unknown) => unknown) => {
        handlers[p] = h
      },
    },
  }
  const { co, open, runs } = coordinatorOf('S')
  const wrapped = withPunchCoordinator(components, DCUTR_PROTOCOL, co)
  let original = 0
  await wrapped.registrar.register(DCUTR_PROTOCOL, {
    onConnect: () => {
      original++
    },
  })
  await wrapped.registrar.register('/other', {
    onConnect: () => {
      original++
    },
  })
  let handled = 0
  await wrapped.registrar.handle(DCUTR_PROTOCOL, async () => {
    handled++
  })
  const c = conn('P')
  open.push(c)
  registered[DCUTR_PROTOCOL]?.onConnect?.('P', c)
  assert.equal(runs.length, 1, 'DCUtR onConnect starts a coordinated run')
  assert.equal(original, 0)
  registered['/other']?.onConnect?.('P', c)
  assert.equal(original, 1)
  // The peer starts a run while ours is under way; S > P, so it is answered.
  await handlers[DCUTR_PROTOCOL]?.({ abort: () => assert.fail('not refused') }, conn('P'))
  assert.equal(handled, 1)
  co.stop()
})

test('a connection from the dial port closes with a reset (no TIME_WAIT), after what was written left', async () => {
  const received: Buffer[] = []
  let serverSaw = ''
  const srv = createServer((s) => {
    s.on('data', (d) => received.push(d))
    s.on('end', () => {
      serverSaw = 'FIN'
    })
    s.on('error', (err: NodeJS.ErrnoException) => {
      serverSaw = err.code ?? 'error'
    })
  })
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()))
  const port = (srv.address() as { port: number }).port
  const socket = connect({ port, host: '127.0.0.1' })
  await once(socket, 'connect')
  const maConn: { direction: string; socket: typeof socket; sendClose?: () => Promise<void> } = {
    direction: 'outbound',
    socket,
  }
  closesWithReset(maConn)
  socket.write(Buffer.alloc(64 * 1024, 1))
  await maConn.sendClose?.()
  assert.equal(socket.destroyed, true)
  await waitFor(() => serverSaw !== '', { timeoutMs: 5000, what: 'the server sees the close' })
  assert.equal(serverSaw, 'ECONNRESET', 'a RST, not a FIN')
  assert.equal(Buffer.concat(received).length, 64 * 1024, 'the bytes written before arrived')
  await new Promise((r) => srv.close(r))
})
