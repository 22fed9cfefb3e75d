/**
 * The consensus area's HTTP routes (docs/API.md):
 * - `GET /dag/status` → {@link DagStatus}: role, rounds, commit index, DAG size, fetches, equivocation evidence;
 * - `GET /dag/vertices/:id` (hex digest) → the vertex: author, round, parents, timestamp, transaction
 *   count and ids, the signed bytes in base64.
 * Without a genesis both answer 503 `CONSENSUS_OFF`.
 */
import type { ApiRoutes } from '../api/index.ts'
import { NodusError } from '../common/errors.ts'
import { blake3 } from '../crypto/index.ts'
import type { Consensus } from './area.ts'

export interface ConsensusRoutesDeps {
  consensus: Pick<Consensus, 'status' | 'vertex'> | undefined
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/** Throws CONSENSUS_OFF when the node has no genesis. */
export function consensusOn<T>(c: T | undefined): T {
  if (c === undefined)
    throw new NodusError('CONSENSUS_OFF', 'this node runs no consensus (started without --genesis)')
  return c
}

/** The consensus routes, as a plugin for createApiServer. */
export function consensusRoutes(deps: ConsensusRoutesDeps): ApiRoutes {
  return (r) => {
    r.get(
      '/dag/status',
      {
        schema: {
          tags: ['consensus'],
          summary: 'The DAG: role, rounds, commit index, size, fetches, equivocation evidence',
        },
      },
      async () => consensusOn(deps.consensus).status(),
    )
    r.get<{ Params: { id: string } }>(
      '/dag/vertices/:id',
      {
        schema: {
          tags: ['consensus'],
          summary: 'A vertex by digest (64 hex digits), from the DAG or the store',
          params: {
            type: 'object',
            properties: { id: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
            required: ['id'],
          },
        },
      },
      async (req) => {
        const v = consensusOn(deps.consensus).vertex(new Uint8Array(Buffer.from(req.params.id, 'hex')))
        if (v === undefined) throw new NodusError('VERTEX_NOT_FOUND', `no vertex ${req.params.id} here`)
        return {
          id: hex(v.digest),
          epoch: v.epoch,
          round: v.round,
          author: v.author,
          timestampMs: v.timestampMs,
          parents: v.parents.map((p) => ({ author: p.author, round: p.round, id: hex(p.digest) })),
          txs: v.txs.map((t) => hex(blake3(t))),
          bytes: Buffer.from(v.bytes).toString('base64'),
        }
      },
    )
  }
}
