/**
 * Probes run inside namespaces (`ip netns exec NS node probe.ts MODE …`) to show that a topology is
 * real: who a server sees as the source (the NAT), which external port a NAT maps a UDP socket to per
 * destination, the TCP round trip through the delay bridges, and bulk TCP throughput. A standalone
 * script, never imported: every mode prints JSON lines on stdout and exits 1 (with the error on
 * stderr) on failure or after its time limit.
 *
 * Modes:
 *   tcp-server HOST PORT          per connection: one line {"remote","port"} (the peer as seen), then echo
 *   udp-server HOST PORT          answers each datagram with {"remote","port"} (the sender as seen)
 *   tcp-rtt HOST PORT COUNT       {"event":"result","seenAs","connectMs","rttMs":[COUNT echo round trips]}
 *   udp-map LOCAL_PORT HOST:PORT… one socket bound to LOCAL_PORT (0: any) asks each server how it is
 *                                 seen: {"event":"result","localPort","seen":[{"target","remote","port"}]}
 *   udp-send HOST PORT COUNT      sends COUNT datagrams of 100 bytes, 64 at a time, then {"event":"sent"}
 *   bulk-server HOST PORT         per connection: {"event":"received","bytes","seconds","mbitPerSecond"}
 *   bulk HOST PORT MEGABYTES      sends MEGABYTES × 10^6 bytes, then waits for the server's count
 * Every mode ends within 60 s (servers: when killed).
 */
import { createSocket } from 'node:dgram'
import { connect, createServer, type Socket } from 'node:net'
import { createInterface } from 'node:readline'

const LIMIT_MS = 60_000

function print(obj: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`)
}

function fail(msg: string): never {
  process.stderr.write(`probe: ${msg}\n`)
  process.exit(1)
}

function portOf(s: string | undefined): number {
  const n = Number(s)
  if (!Number.isInteger(n) || n < 0 || n > 65_535) fail(`bad port ${s}`)
  return n
}

function tcpServer(host: string, port: number): void {
  const srv = createServer((sock) => {
    sock.on('error', () => {})
    print({ event: 'connection', remote: sock.remoteAddress, port: sock.remotePort })
    sock.write(`${JSON.stringify({ remote: sock.remoteAddress, port: sock.remotePort })}\n`)
    sock.pipe(sock)
  })
  srv.listen(port, host, () => print({ event: 'listening', host, port }))
}

function udpServer(host: string, port: number): void {
  const sock = createSocket('udp4')
  sock.on('message', (_msg, rinfo) => {
    print({ event: 'datagram', remote: rinfo.address, port: rinfo.port })
    sock.send(JSON.stringify({ remote: rinfo.address, port: rinfo.port }), rinfo.port, rinfo.address)
  })
  sock.bind(port, host, () => print({ event: 'listening', host, port }))
}

async function tcpRtt(host: string, port: number, count: number): Promise<void> {
  const t0 = performance.now()
  const sock: Socket = connect(port, host)
  await new Promise<void>((res, rej) => {
    sock.once('connect', () => res())
    sock.once('error', rej)
  })
  const connectMs = performance.now() - t0
  const lines = createInterface({ input: sock })
  const first = await new Promise<string>((res) => lines.once('line', res))
  lines.close() // pauses the socket
  sock.resume()
  const seenAs = JSON.parse(first) as { remote: string; port: number }
  const rttMs: number[] = []
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    sock.write('x')
    await new Promise<void>((res) => sock.once('data', () => res()))
    rttMs.push(Math.round((performance.now() - t) * 1000) / 1000)
  }
  sock.end()
  print({ event: 'result', seenAs, connectMs: Math.round(connectMs * 1000) / 1000, rttMs })
}

async function udpMap(localPort: number, targets: string[]): Promise<void> {
  const sock = createSocket('udp4')
  await new Promise<void>((res) => sock.bind(localPort, () => res()))
  const seen: { target: string; remote: string; port: number }[] = []
  for (const target of targets) {
    const i = target.lastIndexOf(':')
    const host = target.slice(0, i)
    const port = portOf(target.slice(i + 1))
    // Up to 10 tries, 300 ms apart: the links may drop datagrams.
    const answer = await new Promise<{ remote: string; port: number }>((res, rej) => {
      let tries = 0
      const send = (): void => {
        if (tries++ >= 10) {
          sock.removeListener('message', onMessage)
          rej(new Error(`no answer from ${target}`))
          return
        }
        sock.send('who', port, host)
        timer = setTimeout(send, 300)
      }
      const onMessage = (msg: Buffer, rinfo: { address: string; port: number }): void => {
        if (rinfo.address !== host || rinfo.port !== port) return
        clearTimeout(timer)
        sock.removeListener('message', onMessage)
        res(JSON.parse(msg.toString()) as { remote: string; port: number })
      }
      let timer: NodeJS.Timeout | undefined
      sock.on('message', onMessage)
      send()
    })
    seen.push({ target, ...answer })
  }
  print({ event: 'result', localPort: sock.address().port, seen })
  sock.close()
}

async function udpSend(host: string, port: number, count: number): Promise<void> {
  const sock = createSocket('udp4')
  const payload = Buffer.alloc(100, 1)
  for (let i = 0; i < count; i += 64) {
    const burst = Math.min(64, count - i)
    await Promise.all(
      Array.from(
        { length: burst },
        () =>
          new Promise<void>((res, rej) => sock.send(payload, port, host, (err) => (err ? rej(err) : res()))),
      ),
    )
  }
  print({ event: 'sent', count })
  sock.close()
}

function bulkServer(host: string, port: number): void {
  const srv = createServer((sock) => {
    let bytes = 0
    const t0 = performance.now()
    sock.on('data', (d) => {
      bytes += d.length
    })
    sock.on('error', () => {})
    sock.on('end', () => {
      const seconds = (performance.now() - t0) / 1000
      const r = { event: 'received', bytes, seconds, mbitPerSecond: (bytes * 8) / seconds / 1e6 }
      print(r)
      sock.end(`${JSON.stringify(r)}\n`)
    })
  })
  srv.listen(port, host, () => print({ event: 'listening', host, port }))
}

async function bulk(host: string, port: number, megabytes: number): Promise<void> {
  const total = megabytes * 1e6
  const chunk = Buffer.alloc(64 * 1024, 7)
  const sock = connect(port, host)
  await new Promise<void>((res, rej) => {
    sock.once('connect', () => res())
    sock.once('error', rej)
  })
  let sent = 0
  while (sent < total) {
    const n = Math.min(chunk.length, total - sent)
    sent += n
    if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
      await new Promise<void>((res) => sock.once('drain', () => res()))
  }
  sock.end()
  const lines = createInterface({ input: sock })
  const line = await new Promise<string>((res) => lines.once('line', res))
  print(JSON.parse(line) as Record<string, unknown>)
}

async function main(argv: string[]): Promise<void> {
  const [mode, a, b, ...rest] = argv
  const deadline = setTimeout(() => fail(`${mode} did not finish within ${LIMIT_MS} ms`), LIMIT_MS)
  switch (mode) {
    case 'tcp-server':
      clearTimeout(deadline)
      return tcpServer(a ?? '0.0.0.0', portOf(b))
    case 'udp-server':
      clearTimeout(deadline)
      return udpServer(a ?? '0.0.0.0', portOf(b))
    case 'bulk-server':
      clearTimeout(deadline)
      return bulkServer(a ?? '0.0.0.0', portOf(b))
    case 'tcp-rtt':
      await tcpRtt(a ?? fail('HOST missing'), portOf(b), Number(rest[0] ?? 5))
      break
    case 'udp-map':
      await udpMap(portOf(a), [b ?? fail('HOST:PORT missing'), ...rest])
      break
    case 'udp-send':
      await udpSend(a ?? fail('HOST missing'), portOf(b), Number(rest[0] ?? 100))
      break
    case 'bulk':
      await bulk(a ?? fail('HOST missing'), portOf(b), Number(rest[0] ?? 100))
      break
    default:
      fail(`unknown mode ${mode}`)
  }
  clearTimeout(deadline)
}

main(process.argv.slice(2)).catch((err: unknown) => fail((err as Error).message))
