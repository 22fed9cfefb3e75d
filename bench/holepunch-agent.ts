/**
 * Runs inside a node's network namespace for bench/holepunch.ts (its API listens on the namespace's
 * own 127.0.0.1): one hole-punch attempt per stdin line `{"peer", "circuit", "timeoutMs", "gapMs", "hangUp"}`.
 * Each attempt (with `hangUp`) hangs up the peer, waits until no connection to it is left and `gapMs`
 * more, dials it through the relay, and polls `GET /network/peers` every 10 ms until a direct
 * connection to it shows; it prints `{"ok": true, "ms": T, "redials", "before"}` (T from the dial to
 * the direct connection; `before`: none, relayed or direct at the dial) or `{"ok": false, "error", …}`.
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
  const { peer, circuit, timeoutMs, gapMs, hangUp } = JSON.parse(line) as {
    peer: string
    circuit: string
    timeoutMs: number
    gapMs: number
    hangUp: boolean
  }
  try {
    // Back to back (`hangUp`): hang up, wait until no connection is left (or the two nodes connected
    // again on their own: kad-dht tags its closest peers keep-alive and libp2p redials them at once,
    // counted as `redials`), then `gapMs`. A fresh peer (`hangUp` false, just restarted) is not hung
    // up: what counts is how soon it is direct, whoever dialed first (`before`: the state at the dial).
    let redials = 0
    if (hangUp) {
      await call('POST', '/network/disconnect', { peerId: peer })
      const gone = performance.now() + 5_000
      while ((await peers()).some((p) => p.peerId === peer) && performance.now() < gone) await pause(10)
      if ((await peers()).some((p) => p.peerId === peer)) redials++
      await pause(gapMs)
    }
    const now = await peers()
    const before = now.some((p) => p.peerId === peer && !p.relayed)
      ? 'direct'
      : now.some((p) => p.peerId === peer)
        ? 'relayed'
        : 'none'
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
      `${JSON.stringify(ms === undefined ? { ok: false, error: 'no direct connection', redials, before } : { ok: true, ms, redials, before })}\n`,
    )
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: (err as Error).message })}\n`)
  }
}
