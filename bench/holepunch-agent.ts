/**
 * Runs inside a node's network namespace for bench/holepunch.ts (its API listens on the namespace's
 * own 127.0.0.1): one hole-punch attempt per stdin line `{"peer", "circuit", "timeoutMs", "gapMs"}`.
 * Each attempt hangs up the peer, waits until no connection to it is left and `gapMs` more (again if
 * the two reconnected meanwhile), dials it through the relay, and polls `GET /network/peers` every
 * 10 ms until a direct connection to it shows; it prints `{"ok": true, "ms": T, "redials"}` (T from the
 * dial to the direct connection) or `{"ok": false, "error", "redials"}`.
 * Usage: `node bench/holepunch-agent.ts API_URL TOKEN`.
 */
import { createInterface } from 'node:readline'

const [api, token] = process.argv.slice(2)
if (api === undefined || token === undefined) throw new Error('usage: holepunch-agent.ts API_URL TOKEN')
const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }

async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const r = await fetch(`${api}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(15_000),
  })
  return await r.json()
}

async function peers(): Promise<Array<{ peerId: string; relayed: boolean }>> {
  const b = (await call('GET', '/network/peers')) as { peers: Array<{ peerId: string; relayed: boolean }> }
  return b.peers
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

for await (const line of createInterface({ input: process.stdin })) {
  const { peer, circuit, timeoutMs, gapMs } = JSON.parse(line) as {
    peer: string
    circuit: string
    timeoutMs: number
    gapMs: number
  }
  try {
    // Hang up, wait until no connection is left, wait gapMs (the last attempt's TCP connection, closed
    // by the hang-up, is in TIME_WAIT on this side; the next punch reuses its 4-tuple, which
    // tcp_tw_reuse allows only 1 s after its last segment), and start over if the two nodes have
    // connected again meanwhile on their own (counted: `redials`).
    const gone = performance.now() + 30_000
    let redials = 0
    for (;;) {
      await call('POST', '/network/disconnect', { peerId: peer })
      while ((await peers()).some((p) => p.peerId === peer)) {
        if (performance.now() > gone) throw new Error('still connected 30 s after hanging up')
        await pause(10)
      }
      await pause(gapMs)
      if (!(await peers()).some((p) => p.peerId === peer)) break
      if (++redials >= 20) throw new Error('reconnected on their own 20 times in a row')
    }
    const t0 = performance.now()
    // The answer does not matter: DCUtR may close the relayed connection before the dial reports.
    const dialing = call('POST', '/network/connect', { multiaddr: circuit }).catch(() => undefined)
    let ms: number | undefined
    while (performance.now() - t0 < timeoutMs) {
      if ((await peers()).some((p) => p.peerId === peer && !p.relayed)) {
        ms = performance.now() - t0
        break
      }
      await pause(10)
    }
    await dialing
    process.stdout.write(
      `${JSON.stringify(ms === undefined ? { ok: false, error: 'no direct connection', redials } : { ok: true, ms, redials })}\n`,
    )
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: (err as Error).message })}\n`)
  }
}
