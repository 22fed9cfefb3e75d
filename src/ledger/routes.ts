/**
 * The ledger's HTTP routes (docs/API.md). Without a genesis they answer 503 `CONSENSUS_OFF`.
 * - `POST /ledger/tx` `{ tx: base64 envelope }` [`?wait=commit`] → `{ id, status: "submitted" }`, or
 *   with `wait=commit` once it committed here `{ id, status: "applied" | "refused", code?, height, root }`
 *   (at most {@link WAIT_COMMIT_MS}; then 504 TIMEOUT). A validator pools it, a follower forwards it.
 *   The token holder's calls are not rate-limited (`api.mutatingPerMinute`): the pool bounds them
 *   (`TX_POOL_FULL`).
 * - `GET /ledger/accounts/:id` (64 hex digits) [`?token=ID`] → nonce, mana regenerated to the last
 *   commit, and the balance of `token` when asked; 404 `LEDGER_NOT_FOUND` for an unused account.
 * - `GET /ledger/tokens/:id` → issuer, name, supply.
 * - `GET /ledger/committee` → the current epoch's committee and the pending proposals with vote counts
 *   (ledger committee.ts); 404 `LEDGER_NOT_FOUND` without a committee.
 * - `GET /ledger` → height, root, timestamp, supply counters; `GET /ledger/roots/:height` → that height's root.
 * - `GET /ledger/commits` → server-sent events, one `commit` event per commit applied from now on
 *   (data: the ledger area's `AppliedCommit`); a client more than {@link SSE_MAX_QUEUED} events
 *   behind is sent `closed` and dropped.
 */
import type { ServerResponse } from 'node:http'
import type { ApiRoutes } from '../api/index.ts'
import { withDeadline } from '../common/abort.ts'
import { NodusError } from '../common/errors.ts'
import type { AppliedCommit, LedgerArea } from './area.ts'
import { quorumOf } from './committee.ts'

export interface LedgerRoutesDeps {
  ledger: LedgerArea | undefined
  submit: ((tx: Uint8Array, o: { signal: AbortSignal }) => Promise<void>) | undefined
}

/** Longest `?wait=commit`, ms. */
export const WAIT_COMMIT_MS = 30_000
/** Events a slow SSE client may lag before it is dropped. */
export const SSE_MAX_QUEUED = 1024
const SSE_KEEPALIVE_MS = 15_000

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const HexId = {
  type: 'object',
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
  required: ['id'],
} as const

function on<T>(v: T | undefined): T {
  if (v === undefined)
    throw new NodusError('CONSENSUS_OFF', 'this node runs no ledger (started without --genesis)')
  return v
}

/** The ledger routes, as a plugin for createApiServer. */
export function ledgerRoutes(deps: LedgerRoutesDeps): ApiRoutes {
  return (r, ctx) => {
    r.post<{ Body: { tx: string }; Querystring: { wait?: 'commit' } }>(
      '/ledger/tx',
      {
        // Not counted against the token holder's rate limit: the transaction pool (TX_POOL_FULL) and
        // the commit waiters (QUEUE_FULL) bound it, as a publish is bound by its queue.
        ...ctx.unmetered,
        schema: {
          tags: ['ledger'],
          summary:
            'Submit a signed ledger transaction (base64 envelope); ?wait=commit answers once it committed here',
          security: [{ bearer: [] }],
          body: {
            type: 'object',
            // base64 of a committee.propose (64 KiB, ledger committee.ts); every other kind is 1,024 bytes
            properties: { tx: { type: 'string', minLength: 4, maxLength: 87_384 } },
            required: ['tx'],
          },
          querystring: { type: 'object', properties: { wait: { type: 'string', enum: ['commit'] } } },
        },
      },
      async (req) => {
        const ledger = on(deps.ledger)
        const submit = on(deps.submit)
        const bytes = new Uint8Array(Buffer.from(req.body.tx, 'base64'))
        const id = await ledger.checkTx(bytes)
        using deadline = withDeadline(undefined, WAIT_COMMIT_MS, 'waiting for the commit')
        const waited = req.query.wait === 'commit' ? ledger.outcome(id, deadline.signal) : undefined
        waited?.catch(() => {})
        await submit(bytes, { signal: deadline.signal })
        if (waited === undefined) return { id: hex(id), status: 'submitted' }
        const w = await waited
        return {
          id: hex(id),
          status: w.outcome.code === undefined ? 'applied' : 'refused',
          ...(w.outcome.code === undefined ? {} : { code: w.outcome.code }),
          height: w.height,
          root: w.root,
        }
      },
    )
    r.get(
      '/ledger',
      { schema: { tags: ['ledger'], summary: 'Height, state root, commit time, mana supply counters' } },
      async () => {
        const l = on(deps.ledger).ledger
        const s = l.supply()
        return {
          chain: hex(l.chain),
          height: l.height,
          root: hex(l.root),
          timestampMs: l.timestampMs,
          supply: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, String(v)])),
        }
      },
    )
    r.get(
      '/ledger/committee',
      {
        schema: {
          tags: ['ledger'],
          summary:
            'The current epoch’s committee (members, base height, leader seed, params) and the pending proposals with their votes',
        },
      },
      async () => {
        const l = on(deps.ledger).ledger
        const c = l.committee()
        if (c === undefined)
          throw new NodusError('LEDGER_NOT_FOUND', 'this ledger’s genesis has no committee')
        const member = (m: (typeof c.members)[number]) => ({
          ed25519: hex(m.ed25519),
          ...(m.name === undefined ? {} : { name: m.name }),
          ...(m.mldsa65 === undefined ? {} : { mldsa65: hex(m.mldsa65) }),
        })
        return {
          epoch: c.epoch,
          base: c.base,
          startMs: c.startMs,
          leaderSeed: hex(c.leaderSeed),
          signatureMode: c.signatureMode,
          quorum: quorumOf(c.members.length),
          params: c.params,
          members: c.members.map(member),
          proposals: c.proposals.map((p) => {
            const body = l.proposal(p.hash)
            return {
              hash: hex(p.hash),
              proposer: p.proposer,
              votes: c.votes.filter((v) => v !== null && Buffer.compare(v, p.hash) === 0).length,
              epoch: body?.epoch,
              members: body?.members.map(member) ?? [],
              params: body?.params ?? {},
            }
          }),
        }
      },
    )
    r.get<{ Params: { height: number } }>(
      '/ledger/roots/:height',
      {
        schema: {
          tags: ['ledger'],
          summary: 'The state root and commit time of a committed height (while kept: ledger.rootsKept)',
          params: {
            type: 'object',
            properties: { height: { type: 'integer', minimum: 0 } },
            required: ['height'],
          },
        },
      },
      async (req) => {
        const r = on(deps.ledger).ledger.rootAt(req.params.height)
        if (r === undefined)
          throw new NodusError('LEDGER_NOT_FOUND', `no root kept for height ${req.params.height}`)
        return { height: req.params.height, root: hex(r.root), timestampMs: r.timestampMs }
      },
    )
    r.get<{ Params: { id: string }; Querystring: { token?: string } }>(
      '/ledger/accounts/:id',
      {
        schema: {
          tags: ['ledger'],
          summary:
            'An account (Ed25519 key, hex): nonce, mana regenerated to the last commit; ?token=ID adds its balance',
          params: HexId,
          querystring: {
            type: 'object',
            properties: { token: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
          },
        },
      },
      async (req) => {
        const l = on(deps.ledger).ledger
        const key = unhex(req.params.id)
        const a = l.account(key)
        const token = req.query.token
        if (a === undefined && token === undefined)
          throw new NodusError('LEDGER_NOT_FOUND', `no account ${req.params.id}`)
        return {
          account: req.params.id,
          height: l.height,
          ...(a === undefined
            ? { nonce: 0, mana: null }
            : {
                nonce: a.nonce,
                mana: {
                  balance: a.mana.balance,
                  capacity: a.mana.capacity,
                  regenPerSecond: a.mana.regenPerSecond,
                  lastUpdateMs: a.mana.lastUpdateMs,
                },
              }),
          ...(token === undefined ? {} : { token, tokenBalance: l.tokenBalance(unhex(token), key) }),
        }
      },
    )
    r.get<{ Params: { id: string } }>(
      '/ledger/tokens/:id',
      { schema: { tags: ['ledger'], summary: 'A token (id, hex): issuer, name, supply', params: HexId } },
      async (req) => {
        const t = on(deps.ledger).ledger.token(unhex(req.params.id))
        if (t === undefined) throw new NodusError('LEDGER_NOT_FOUND', `no token ${req.params.id}`)
        return { id: req.params.id, issuer: hex(t.issuer), name: t.name, supply: t.supply }
      },
    )
    r.get(
      '/ledger/commits',
      {
        schema: {
          tags: ['ledger'],
          summary: `Server-sent events: one \`commit\` event per commit applied from now on (height, root, leader, transactions and outcomes); a client ${SSE_MAX_QUEUED} events behind is sent \`closed\` and dropped`,
          produces: ['text/event-stream'],
        },
      },
      async (req, reply) => {
        const ledger = on(deps.ledger)
        const res = reply.raw
        reply.hijack()
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        })
        res.write(': subscribed\n\n')
        await streamCommits(ledger, res, () => req.raw.destroyed)
      },
    )
  }
}

async function streamCommits(ledger: LedgerArea, res: ServerResponse, gone: () => boolean): Promise<void> {
  const queue: AppliedCommit[] = []
  let wake: (() => void) | undefined
  let closed: string | undefined
  const stop = ledger.onApplied((c) => {
    if (queue.length >= SSE_MAX_QUEUED) closed = 'slow'
    else queue.push(c)
    wake?.()
  })
  const keepalive = setInterval(() => res.write(': keep-alive\n\n'), SSE_KEEPALIVE_MS)
  keepalive.unref()
  const end = (): void => {
    closed ??= 'gone'
    wake?.()
  }
  res.once('close', end)
  try {
    while (closed === undefined && !gone()) {
      const c = queue.shift()
      if (c === undefined) {
        await new Promise<void>((r) => {
          wake = r
        })
        wake = undefined
        continue
      }
      if (!res.write(`event: commit\nid: ${c.height}\ndata: ${JSON.stringify(c)}\n\n`))
        await new Promise<void>((r) => {
          res.once('drain', r)
          res.once('close', r)
        })
    }
    if (closed === 'slow') res.write(`event: closed\ndata: ${JSON.stringify({ reason: 'slow' })}\n\n`)
  } finally {
    clearInterval(keepalive)
    stop()
    res.end()
  }
}
