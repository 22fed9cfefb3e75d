/**
 * `nodus committee show|propose|vote` (issue 21): the validator committee as ledger state
 * (src/ledger/committee.ts). `show` reads `GET /ledger/committee`; `propose` and `vote` sign a
 * `committee.propose` / `committee.vote` for the next epoch with the `--key-dir` key (a current
 * member's Ed25519 key: its account) and send it like `nodus tx` (ledger.ts `sendTx`); parameters out of
 * the genesis bounds are refused by `encodeTx` (`LEDGER_TX_INVALID`, the reason names the field).
 */
import { NodusError } from '../common/errors.ts'
import type { ConsensusParams, TxAction } from '../ledger/index.ts'
import { apiTarget, CLIENT_FLAGS, intFlag, out, parse } from './args.ts'
import { getJson } from './client.ts'
import { hexBytes, parseWriterKey } from './kv-writer.ts'
import { sendTx } from './ledger.ts'

export const COMMITTEE_USAGE = `usage: nodus committee <command> … [--data-dir DIR | --api URL --token T]
  show                                         the epoch's committee and pending proposals with votes
  propose --member KEY [--member KEY …]        propose the next epoch's committee, in this order
          [--round-timeout-ms N] [--max-txs-per-vertex N] [--max-vertex-bytes N]
  vote HASH                                    vote for a pending proposal of the next epoch
propose and vote sign with --key-dir (default the data directory): a current member's key`

interface CommitteeInfo {
  epoch: number
  base: number
  quorum: number
  members: { ed25519: string; name?: string }[]
  proposals: { hash: string; proposer: number; votes: number; members: { ed25519: string }[] }[]
}

/** `nodus committee …`. */
export async function committeeCommand(args: string[]): Promise<number> {
  const [command, ...rest] = args
  const { values: f, positionals: p } = parse(rest, {
    ...CLIENT_FLAGS,
    'key-dir': { type: 'string' },
    nonce: { type: 'string' },
    'no-wait': { type: 'boolean' },
    member: { type: 'string', multiple: true },
    'round-timeout-ms': { type: 'string' },
    'max-txs-per-vertex': { type: 'string' },
    'max-vertex-bytes': { type: 'string' },
  })
  const info = await getJson<CommitteeInfo>(await apiTarget(f), '/ledger/committee')
  if (command === 'show' && p.length === 0) {
    const lines = [
      `epoch ${info.epoch} (from height ${info.base + 1}), ${info.members.length} members, quorum ${info.quorum}`,
      ...info.members.map((m, i) => `  ${i} ${m.ed25519}${m.name === undefined ? '' : ` ${m.name}`}`),
      ...info.proposals.map(
        (x) =>
          `proposal ${x.hash} by member ${x.proposer}: ${x.members.length} members, ${x.votes}/${info.quorum} votes`,
      ),
    ]
    out(Boolean(f.json), { ...info }, lines.join('\n'))
    return 0
  }
  let action: TxAction
  if (command === 'propose' && p.length === 0) {
    const keys = Array.isArray(f.member) ? f.member : []
    if (keys.length === 0)
      throw new NodusError('INVALID_ARGUMENT', 'propose needs --member KEY at least once')
    const params: ConsensusParams = {}
    if (f['round-timeout-ms'] !== undefined) params.roundTimeoutMs = intFlag(f, 'round-timeout-ms', 0)
    if (f['max-txs-per-vertex'] !== undefined) params.maxTxsPerVertex = intFlag(f, 'max-txs-per-vertex', 0)
    if (f['max-vertex-bytes'] !== undefined) params.maxVertexBytes = intFlag(f, 'max-vertex-bytes', 0)
    action = {
      kind: 'committee.propose',
      epoch: info.epoch + 1,
      members: keys.map((k) => ({ ed25519: parseWriterKey(k) })),
      ...(Object.keys(params).length === 0 ? {} : { params }),
    }
  } else if (command === 'vote' && p.length === 1)
    action = {
      kind: 'committee.vote',
      epoch: info.epoch + 1,
      proposal: hexBytes(p[0] as string, 'a proposal hash', [32]),
    }
  else throw new NodusError('INVALID_ARGUMENT', COMMITTEE_USAGE)
  return sendTx(f, action)
}
