/**
 * The agreement commands (issue 21): `nodus tx …`, `nodus balance`,
 * `nodus dag status` (`nodus genesis …`: genesis.ts). Transactions are signed here with the key in `--key-dir` (default the data
 * directory) and sent to `POST /ledger/tx`; the node never sees the key.
 */
import { resolve } from 'node:path'
import { NodusError } from '../common/errors.ts'
import { loadIdentity, signEd25519 } from '../crypto/index.ts'
import { encodeTx, type TxAction, tokenId } from '../ledger/index.ts'
import { apiTarget, CLIENT_FLAGS, dataDirOf, type Flags, intFlag, out, parse } from './args.ts'
import { getJson, postJson } from './client.ts'
import { hexBytes, parseWriterKey } from './kv-writer.ts'

export const TX_USAGE = `usage: nodus tx <kind> … [--key-dir DIR] [--nonce N] [--no-wait] [--data-dir DIR | --api URL --token T]
  transfer TO AMOUNT [--of-token ID]   mana (or a token) to TO (did:key, PeerId or hex key)
  create-token NAME                 a token you issue (its id: printed)
  mint TOKEN TO AMOUNT              new tokens of yours to TO
  burn TOKEN AMOUNT                 destroy some of your own tokens
waits until the transaction commits here (prints applied or refused, with the code) unless --no-wait`

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

function amountOf(text: string | undefined, what: string): number {
  const n = Number(text)
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1)
    throw new NodusError('INVALID_ARGUMENT', `${what} must be a whole number ≥ 1`)
  return n
}

interface LedgerInfo {
  chain: string
  height: number
  root: string
}
interface AccountInfo {
  nonce: number
  mana: { balance: number; capacity: number; regenPerSecond: number } | null
  tokenBalance?: number
  height: number
}

async function accountOr404(
  api: Awaited<ReturnType<typeof apiTarget>>,
  key: string,
  token?: string,
): Promise<AccountInfo | undefined> {
  try {
    return await getJson<AccountInfo>(
      api,
      `/ledger/accounts/${key}${token === undefined ? '' : `?token=${token}`}`,
    )
  } catch (err) {
    if (err instanceof NodusError && err.code === 'LEDGER_NOT_FOUND') return undefined
    throw err
  }
}

/** `nodus tx …`. */
export async function txCommand(args: string[]): Promise<number> {
  const [kind, ...rest] = args
  const { values: f, positionals: p } = parse(rest, {
    ...CLIENT_FLAGS,
    'key-dir': { type: 'string' },
    'of-token': { type: 'string' },
    nonce: { type: 'string' },
    'no-wait': { type: 'boolean' },
  })
  let action: TxAction
  if (kind === 'transfer' && p.length === 2) {
    action = {
      kind: 'transfer',
      to: parseWriterKey(p[0] as string),
      amount: amountOf(p[1], 'AMOUNT'),
      ...(typeof f['of-token'] === 'string' ? { token: hexBytes(f['of-token'], 'a token id', [32]) } : {}),
    }
  } else if (kind === 'create-token' && p.length === 1)
    action = { kind: 'token.create', name: p[0] as string }
  else if (kind === 'mint' && p.length === 3)
    action = {
      kind: 'mint',
      token: hexBytes(p[0] as string, 'a token id', [32]),
      to: parseWriterKey(p[1] as string),
      amount: amountOf(p[2], 'AMOUNT'),
    }
  else if (kind === 'burn' && p.length === 2)
    action = {
      kind: 'burn',
      token: hexBytes(p[0] as string, 'a token id', [32]),
      amount: amountOf(p[1], 'AMOUNT'),
    }
  else throw new NodusError('INVALID_ARGUMENT', TX_USAGE)
  return sendTx(f, action)
}

/**
 * Sign `action` with the `--key-dir` (default: data directory) Ed25519 key at the account's next nonce
 * (or `--nonce`), post it to `POST /ledger/tx` and print the outcome (waits for the commit unless
 * `--no-wait`). @returns the exit code: 1 when refused
 */
export async function sendTx(f: Flags, action: TxAction): Promise<number> {
  const id = await loadIdentity(typeof f['key-dir'] === 'string' ? resolve(f['key-dir']) : dataDirOf(f))
  const me = id.ed25519.publicKey.raw
  const api = await apiTarget(f)
  const info = await getJson<LedgerInfo>(api, '/ledger')
  const nonce =
    f.nonce === undefined ? ((await accountOr404(api, hex(me)))?.nonce ?? 0) : intFlag(f, 'nonce', 0)
  const tx = await encodeTx(
    { chain: hexBytes(info.chain, 'the chain id', [32]), nonce, ...action },
    {
      publicKey: me,
      sign: (m) => signEd25519(id.ed25519, m),
    },
  )
  const wait = f['no-wait'] !== true
  const r = await postJson<{ id: string; status: string; code?: string; height?: number; root?: string }>(
    api,
    `/ledger/tx${wait ? '?wait=commit' : ''}`,
    { tx: Buffer.from(tx.bytes).toString('base64') },
  )
  const extra = action.kind === 'token.create' ? { token: hex(tokenId(me, action.name)) } : {}
  out(
    Boolean(f.json),
    { ...r, nonce, ...extra },
    `${r.status}${r.code === undefined ? '' : ` ${r.code}`} ${r.id}${r.height === undefined ? '' : ` at height ${r.height}`}${'token' in extra ? `\ntoken ${extra.token}` : ''}`,
  )
  return r.status === 'refused' ? 1 : 0
}

/** `nodus balance [ACCOUNT] [--of-token ID]`. */
export async function balanceCommand(args: string[]): Promise<number> {
  const { values: f, positionals: p } = parse(args, {
    ...CLIENT_FLAGS,
    'key-dir': { type: 'string' },
    'of-token': { type: 'string' },
  })
  const key =
    p[0] === undefined
      ? (await loadIdentity(typeof f['key-dir'] === 'string' ? resolve(f['key-dir']) : dataDirOf(f))).ed25519
          .publicKey.raw
      : parseWriterKey(p[0])
  const token =
    typeof f['of-token'] === 'string' ? hex(hexBytes(f['of-token'], 'a token id', [32])) : undefined
  const a = await accountOr404(await apiTarget(f), hex(key), token)
  const mana = a?.mana?.balance ?? 0
  out(
    Boolean(f.json),
    {
      account: hex(key),
      nonce: a?.nonce ?? 0,
      mana,
      height: a?.height,
      ...(token === undefined ? {} : { token, tokenBalance: a?.tokenBalance ?? 0 }),
    },
    `${hex(key)}: ${mana} mana${token === undefined ? '' : `, ${a?.tokenBalance ?? 0} of token ${token}`} (nonce ${a?.nonce ?? 0})`,
  )
  return 0
}

/** `nodus dag status`. */
export async function dagCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args
  if (sub !== 'status')
    throw new NodusError('INVALID_ARGUMENT', 'usage: nodus dag status [--data-dir DIR | --api URL]')
  const { values: f } = parse(rest, CLIENT_FLAGS)
  const api = await apiTarget(f)
  const s = await getJson<Record<string, unknown>>(api, '/dag/status')
  const l = await getJson<LedgerInfo>(api, '/ledger')
  out(
    Boolean(f.json),
    { ...s, ledger: l },
    [
      `${String(s.federation)} (${String(s.genesisId).slice(0, 16)}…): ${String(s.role)}${s.author === -1 ? '' : ` #${String(s.author)}`} of ${String(s.validators)} validators, epoch ${String(s.epoch)}`,
      `round ${String(s.highestRound)} (quorum ${String(s.quorumRound)}, proposed ${String(s.lastProposedRound)}), commit ${String(s.lastCommitIndex)}, DAG ${String(s.dagVertices)} vertices`,
      `ledger height ${l.height} root ${l.root}`,
      `equivocators [${(s.equivocators as number[]).join(', ')}]${s.halted === true ? ' HALTED' : ''}`,
    ].join('\n'),
  )
  return 0
}
