/**
 * The agreement commands (issue 21): `nodus genesis devnet`, `nodus tx …`, `nodus balance`,
 * `nodus dag status`. Transactions are signed here with the key in `--key-dir` (default the data
 * directory) and sent to `POST /ledger/tx`; the node never sees the key.
 */
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { systemClock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import { systemRandom } from '../common/random.ts'
import { genesisSigningBytes, genesisToJson, newGenesisBody, verifyGenesis } from '../consensus/index.ts'
import { loadIdentity, signEd25519, signHybrid } from '../crypto/index.ts'
import { encodeTx, type TxAction, tokenId } from '../ledger/index.ts'
import { apiTarget, CLIENT_FLAGS, COMMON, dataDirOf, intFlag, out, parse } from './args.ts'
import { getJson, postJson } from './client.ts'
import { hexBytes, parseWriterKey } from './kv-writer.ts'

export const GENESIS_USAGE = `usage: nodus genesis devnet --member DIR [--member DIR]… --out FILE
  [--federation NAME] [--balance N] [--capacity N] [--regen N] [--account KEY]… [--round-timeout-ms N]
  [--max-vertex-bytes N] [--hybrid]
builds a signed genesis where one machine holds every member's keys (DIR: a data dir made by
\`nodus init\`); every member and every --account (did:key, PeerId or hex key) gets an account with
--balance mana (default 1,000,000) of --capacity (default 10,000,000), regenerating --regen per second (default 1,000)`

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

/** What {@link writeDevnetGenesis} takes: `nodus genesis devnet`'s flags. */
export interface DevnetGenesisInput {
  /** Members' data directories (made by `nodus init`), in validator order. */
  dirs: string[]
  /** The genesis file to write. */
  out: string
  federation?: string
  /** Mana each account starts with. Default 1,000,000 (at most `capacity`). */
  balance?: number
  /** Mana capacity of each account. Default 10,000,000. */
  capacity?: number
  /** Mana regenerated per second. Default 1,000. */
  regenPerSecond?: number
  /** Further accounts (32-byte Ed25519 keys) beside the members'. */
  accounts?: Uint8Array[]
  roundTimeoutMs?: number
  maxVertexBytes?: number
  hybrid?: boolean
}

/**
 * Build a signed genesis where one machine holds every member's keys and write it to `input.out`
 * (what `nodus genesis devnet` runs; the demos and benches call it directly).
 * @returns the genesis id (hex), member and account counts, the file written
 * @throws `GENESIS_INVALID` for out-of-bounds parameters; the identity loader's errors for a bad dir
 */
export async function writeDevnetGenesis(
  input: DevnetGenesisInput,
): Promise<{ id: string; members: number; accounts: number; out: string }> {
  const ids = await Promise.all(input.dirs.map((d) => loadIdentity(resolve(d))))
  const hybrid = input.hybrid === true
  const capacity = input.capacity ?? 10_000_000
  const balance = Math.min(capacity, input.balance ?? 1_000_000)
  const regenPerSecond = input.regenPerSecond ?? 1_000
  const accounts = new Map<string, Record<string, unknown>>()
  for (const key of [...ids.map((i) => i.ed25519.publicKey.raw), ...(input.accounts ?? [])])
    accounts.set(hex(key), { account: hex(key), balance, capacity, regenPerSecond })
  const body = newGenesisBody(
    {
      federation: input.federation ?? 'devnet',
      members: ids.map((id, i) => ({
        name: `validator-${i}`,
        ed25519: id.ed25519.publicKey.raw,
        ...(hybrid ? { mldsa65: id.mldsa.publicKey } : {}),
      })),
      signatureMode: hybrid ? 'hybrid' : 'ed25519',
      ...(input.roundTimeoutMs === undefined ? {} : { roundTimeoutMs: input.roundTimeoutMs }),
      ...(input.maxVertexBytes === undefined ? {} : { maxVertexBytes: input.maxVertexBytes }),
      ledger: { accounts: [...accounts.values()] },
    },
    { clock: systemClock, random: systemRandom },
  )
  const message = genesisSigningBytes(body)
  const signatures = await Promise.all(
    ids.map(async (id) => (hybrid ? await signHybrid(id, message) : signEd25519(id.ed25519, message))),
  )
  const genesis = verifyGenesis(body, signatures)
  const out = resolve(input.out)
  await writeFile(out, genesisToJson(genesis))
  return { id: hex(genesis.id), members: ids.length, accounts: accounts.size, out }
}

/** `nodus genesis devnet …`. */
export async function genesisCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args
  const { values: f } = parse(rest, {
    ...COMMON,
    member: { type: 'string', multiple: true },
    account: { type: 'string', multiple: true },
    out: { type: 'string' },
    federation: { type: 'string' },
    balance: { type: 'string' },
    capacity: { type: 'string' },
    regen: { type: 'string' },
    'round-timeout-ms': { type: 'string' },
    'max-vertex-bytes': { type: 'string' },
    hybrid: { type: 'boolean' },
  })
  const dirs = (f.member as string[] | undefined) ?? []
  if (sub !== 'devnet' || dirs.length === 0 || typeof f.out !== 'string')
    throw new NodusError('INVALID_ARGUMENT', GENESIS_USAGE)
  const r = await writeDevnetGenesis({
    dirs,
    out: f.out,
    ...(typeof f.federation === 'string' ? { federation: f.federation } : {}),
    capacity: intFlag(f, 'capacity', 10_000_000),
    balance: intFlag(f, 'balance', 1_000_000),
    regenPerSecond: intFlag(f, 'regen', 1_000),
    accounts: ((f.account as string[] | undefined) ?? []).map(parseWriterKey),
    ...(f['round-timeout-ms'] === undefined ? {} : { roundTimeoutMs: intFlag(f, 'round-timeout-ms', 500) }),
    ...(f['max-vertex-bytes'] === undefined ? {} : { maxVertexBytes: intFlag(f, 'max-vertex-bytes', 0) }),
    hybrid: f.hybrid === true,
  })
  out(Boolean(f.json), r, `genesis ${r.id}: ${r.members} members, ${r.accounts} accounts → ${r.out}`)
  return 0
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
  const id = await loadIdentity(typeof f['key-dir'] === 'string' ? resolve(f['key-dir']) : dataDirOf(f))
  const me = id.ed25519.publicKey.raw
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
      `${String(s.federation)} (${String(s.genesisId).slice(0, 16)}…): ${String(s.role)}${s.author === -1 ? '' : ` #${String(s.author)}`} of ${String(s.validators)} validators`,
      `round ${String(s.highestRound)} (quorum ${String(s.quorumRound)}, proposed ${String(s.lastProposedRound)}), commit ${String(s.lastCommitIndex)}, DAG ${String(s.dagVertices)} vertices`,
      `ledger height ${l.height} root ${l.root}`,
      `equivocators [${(s.equivocators as number[]).join(', ')}]${s.halted === true ? ' HALTED' : ''}`,
    ].join('\n'),
  )
  return 0
}
