/**
 * `nodus genesis …` (issue 21): a federation's genesis, signed by every member.
 *
 * - `devnet`: one machine holds every member's keys and signs for all (demos, benches, tests).
 * - `init` → `sign` (on each member's machine, in turn) → `verify`: members on separate machines. `init`
 *   writes the body with a `null` signature per member (a draft, src/consensus/genesis-draft.ts); each
 *   member signs the file with its data dir's keys and passes it on; `verify` says who has signed.
 *   A node refuses to start with a draft (`GENESIS_INCOMPLETE`).
 */
import { readFile, rename, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import type { Clock } from '../common/clock.ts'
import { systemClock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import type { Random } from '../common/random.ts'
import { systemRandom } from '../common/random.ts'
import {
  type GenesisBody,
  type GenesisDraftStatus,
  genesisDraftStatus,
  genesisSigningBytes,
  genesisToJson,
  newGenesisBody,
  newGenesisDraft,
  readGenesisJson,
  signGenesisDraft,
  verifyGenesis,
} from '../consensus/index.ts'
import { didKeyFromEd25519, loadIdentity, signEd25519, signHybrid } from '../crypto/index.ts'
import { genesisEntries, ledgerGenesisOf } from '../ledger/index.ts'
import { COMMON, dataDirOf, intFlag, out, parse } from './args.ts'
import { ed25519KeyOf, parseAccount, parseMember } from './genesis-input.ts'
import { parseWriterKey } from './kv-writer.ts'

export const GENESIS_USAGE = `usage: nodus genesis init|sign|verify|devnet …
  init --federation NAME --out FILE --member [NAME=]KEY… [--hybrid] [--round-timeout-ms N]
       [--max-vertex-bytes N] [--max-txs-per-vertex N] [--account ID=BALANCE[,capacity=N][,regen=N]]…
       [--mana-authority ID]
      an unsigned genesis: KEY is a did:key, PeerId or hex key, or a file holding the member's
      \`nodus id --json\` (needed with --hybrid: it carries the ML-DSA-65 key)
  sign FILE [--data-dir DIR]      add this member's signature (refused if not a member, or if the
                                  body changed since others signed)
  verify FILE                     federation, genesis id, members, who signed; exit 1 until complete
  devnet --member DIR… --out FILE [--federation NAME] [--balance N] [--capacity N] [--regen N]
       [--account KEY]… [--round-timeout-ms N] [--max-vertex-bytes N] [--hybrid]
      one machine holds every member's keys (DIR: a data dir made by \`nodus init\`); every member
      and every --account gets --balance mana (default 1,000,000) of --capacity (default 10,000,000),
      regenerating --regen per second (default 1,000)`

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/** The PeerId (text) of a 32-byte Ed25519 public key. */
function peerIdOf(ed25519: Uint8Array): string {
  return peerIdFromPublicKey(
    publicKeyFromRaw(ed25519) as Parameters<typeof peerIdFromPublicKey>[0],
  ).toString()
}

/**
 * Check the ledger section of `body` as a node will when it starts (src/ledger/section.ts, genesis.ts).
 * @throws NodusError `LEDGER_GENESIS_INVALID`
 */
function checkLedgerSection(body: GenesisBody): void {
  genesisEntries(ledgerGenesisOf({ id: new Uint8Array(32), body }))
}

/** Write `text` to `path` through a temporary file and a rename, so a reader never sees half of it. */
async function replaceFile(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, text)
  await rename(tmp, path)
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

/** What {@link initGenesis} takes: `nodus genesis init`'s flags. */
export interface GenesisInitInput {
  /** The federation's name, 1–64 characters. */
  federation: string
  /** The draft to write; refused if it exists (it may hold signatures). */
  out: string
  /** `[NAME=]KEY` per member, in validator order ({@link parseMember}). */
  members: readonly string[]
  /** Hybrid (Ed25519 + ML-DSA-65) signatures: every member must come with its ML-DSA-65 key. */
  hybrid?: boolean
  roundTimeoutMs?: number
  maxVertexBytes?: number
  maxTxsPerVertex?: number
  /** `ID=BALANCE[,capacity=N][,regen=N]` per account ({@link parseAccount}). */
  accounts?: readonly string[]
  /** The key allowed to sign `mana.configure` (did:key, PeerId or hex). */
  manaAuthority?: string
}

/**
 * Write an unsigned genesis (a draft: `null` signatures) for members on separate machines to sign in
 * turn (`nodus genesis init`). The time and leader seed come from `deps` (default the system's).
 * @returns the id the genesis will have (hex), member and account counts, the file written
 * @throws NodusError `INVALID_ARGUMENT` (a bad member or account, `out` exists), `GENESIS_INVALID`
 *   (parameters out of bounds, a member twice, no ML-DSA-65 key in hybrid mode),
 *   `LEDGER_GENESIS_INVALID` (an account out of bounds or twice)
 */
export async function initGenesis(
  input: GenesisInitInput,
  deps: { clock: Clock; random: Random } = { clock: systemClock, random: systemRandom },
): Promise<{ id: string; members: number; accounts: number; out: string }> {
  const hybrid = input.hybrid === true
  const members = await Promise.all(input.members.map((m, i) => parseMember(m, i)))
  const missing = members.findIndex((m) => hybrid && m.mldsa65 === undefined)
  if (missing >= 0)
    throw new NodusError(
      'INVALID_ARGUMENT',
      `--member ${missing + 1} has no ML-DSA-65 key, which --hybrid needs: give the member's \`nodus id --json\` file`,
    )
  const accounts = (input.accounts ?? []).map(parseAccount)
  const ledger: Record<string, unknown> = { accounts }
  if (input.manaAuthority !== undefined)
    ledger.manaAuthority = hex(ed25519KeyOf(input.manaAuthority, '--mana-authority'))
  const body = newGenesisBody(
    {
      federation: input.federation,
      // Ed25519 mode: the ML-DSA-65 keys a member handed over stay out of the body.
      members: hybrid ? members : members.map(({ mldsa65: _, ...m }) => m),
      signatureMode: hybrid ? 'hybrid' : 'ed25519',
      ...(input.roundTimeoutMs === undefined ? {} : { roundTimeoutMs: input.roundTimeoutMs }),
      ...(input.maxVertexBytes === undefined ? {} : { maxVertexBytes: input.maxVertexBytes }),
      ...(input.maxTxsPerVertex === undefined ? {} : { maxTxsPerVertex: input.maxTxsPerVertex }),
      ledger,
    },
    deps,
  )
  checkLedgerSection(body)
  const path = resolve(input.out)
  const draft = newGenesisDraft(body)
  try {
    await writeFile(path, genesisToJson(draft), { flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new NodusError(
        'INVALID_ARGUMENT',
        `${path} exists (it may hold signatures): remove it or pick another --out`,
      )
    throw err
  }
  return {
    id: hex(genesisDraftStatus(draft).id),
    members: members.length,
    accounts: accounts.length,
    out: path,
  }
}

/**
 * Add the signature of the identity in `dataDir` to the genesis draft in `file`, in place
 * (`nodus genesis sign`).
 * @returns the member's index, how many have signed, whether every member has
 * @throws NodusError `GENESIS_NOT_MEMBER`, `GENESIS_INVALID` (a malformed file, or another member's
 *   signature that no longer verifies: the body changed), the identity loader's errors
 */
export async function signGenesisFile(
  file: string,
  dataDir: string,
): Promise<{ id: string; member: number; signed: number; members: number; complete: boolean }> {
  const path = resolve(file)
  const draft = readGenesisJson(await readFile(path, 'utf8'))
  const signed = await signGenesisDraft(draft, await loadIdentity(resolve(dataDir)))
  await replaceFile(path, genesisToJson(signed))
  return {
    id: hex(genesisDraftStatus(signed).id),
    member: signed.index,
    signed: signed.signatures.filter((s) => s !== null).length,
    members: signed.body.members.length,
    complete: signed.complete,
  }
}

/** What `nodus genesis verify` reports. */
export interface GenesisFileReport {
  federation: string
  epoch: number
  signatureMode: string
  /** The genesis id (hex): BLAKE3-256 of the body's signing bytes. */
  id: string
  members: { index: number; name?: string; peerId: string; did: string; signature: string }[]
  signed: number
  complete: boolean
}

/**
 * Who has signed the genesis (or draft) in `file`, each signature checked against the body.
 * @throws NodusError `GENESIS_INVALID` (a malformed file), `LEDGER_GENESIS_INVALID` (its ledger section)
 */
export async function verifyGenesisFile(file: string): Promise<GenesisFileReport> {
  const draft = readGenesisJson(await readFile(resolve(file), 'utf8'))
  checkLedgerSection(draft.body)
  const s: GenesisDraftStatus = genesisDraftStatus(draft)
  const b = draft.body
  return {
    federation: b.federation,
    epoch: b.epoch,
    signatureMode: b.signatureMode,
    id: hex(s.id),
    members: s.members.map((m) => ({
      index: m.index,
      ...(m.name === undefined ? {} : { name: m.name }),
      peerId: peerIdOf(m.ed25519),
      did: didKeyFromEd25519(m.ed25519),
      signature: m.signature,
    })),
    signed: s.members.filter((m) => m.signature === 'signed').length,
    complete: s.complete,
  }
}

function reportText(r: GenesisFileReport): string {
  const lines = [
    `federation ${r.federation} (epoch ${r.epoch}, ${r.signatureMode} signatures), genesis ${r.id}`,
    ...r.members.map((m) => `  #${m.index} ${m.name ?? '-'} ${m.peerId} ${m.signature}`),
  ]
  const unsigned = r.members.filter((m) => m.signature === 'unsigned').map((m) => `#${m.index}`)
  const invalid = r.members.filter((m) => m.signature === 'invalid').map((m) => `#${m.index}`)
  lines.push(
    r.complete
      ? `complete: all ${r.members.length} members signed`
      : [
          `incomplete: ${r.signed} of ${r.members.length} signed`,
          ...(unsigned.length > 0 ? [`waiting for ${unsigned.join(', ')}`] : []),
          ...(invalid.length > 0
            ? [`signatures of ${invalid.join(', ')} do not verify (the body changed after they signed?)`]
            : []),
        ].join('; '),
  )
  return lines.join('\n')
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : [])

/** `nodus genesis init|sign|verify|devnet …`. */
export async function genesisCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args
  const { values: f, positionals: p } = parse(rest, {
    ...COMMON,
    'data-dir': { type: 'string' },
    member: { type: 'string', multiple: true },
    account: { type: 'string', multiple: true },
    out: { type: 'string' },
    federation: { type: 'string' },
    balance: { type: 'string' },
    capacity: { type: 'string' },
    regen: { type: 'string' },
    'round-timeout-ms': { type: 'string' },
    'max-vertex-bytes': { type: 'string' },
    'max-txs-per-vertex': { type: 'string' },
    'mana-authority': { type: 'string' },
    hybrid: { type: 'boolean' },
  })
  const json = Boolean(f.json)
  const params = {
    ...(f['round-timeout-ms'] === undefined ? {} : { roundTimeoutMs: intFlag(f, 'round-timeout-ms', 500) }),
    ...(f['max-vertex-bytes'] === undefined ? {} : { maxVertexBytes: intFlag(f, 'max-vertex-bytes', 0) }),
    hybrid: f.hybrid === true,
  }
  const file = p[0]
  if (sub === 'init' && list(f.member).length > 0 && str(f.out) && str(f.federation)) {
    const manaAuthority = str(f['mana-authority'])
    const r = await initGenesis({
      federation: str(f.federation) as string,
      out: str(f.out) as string,
      members: list(f.member),
      accounts: list(f.account),
      ...params,
      ...(f['max-txs-per-vertex'] === undefined
        ? {}
        : { maxTxsPerVertex: intFlag(f, 'max-txs-per-vertex', 0) }),
      ...(manaAuthority === undefined ? {} : { manaAuthority }),
    })
    out(json, r, `genesis ${r.id}: ${r.members} members, ${r.accounts} accounts, unsigned → ${r.out}`)
    return 0
  }
  if (sub === 'sign' && file !== undefined && p.length === 1) {
    const r = await signGenesisFile(file, dataDirOf(f))
    out(
      json,
      r,
      `signed as member #${r.member}: ${r.signed} of ${r.members} signed${r.complete ? ', complete' : ''}`,
    )
    return 0
  }
  if (sub === 'verify' && file !== undefined && p.length === 1) {
    const r = await verifyGenesisFile(file)
    out(json, { ...r }, reportText(r))
    return r.complete ? 0 : 1
  }
  const dirs = list(f.member)
  if (sub !== 'devnet' || dirs.length === 0 || typeof f.out !== 'string')
    throw new NodusError('INVALID_ARGUMENT', GENESIS_USAGE)
  const r = await writeDevnetGenesis({
    dirs,
    out: f.out,
    ...(typeof f.federation === 'string' ? { federation: f.federation } : {}),
    capacity: intFlag(f, 'capacity', 10_000_000),
    balance: intFlag(f, 'balance', 1_000_000),
    regenPerSecond: intFlag(f, 'regen', 1_000),
    accounts: list(f.account).map(parseWriterKey),
    ...params,
  })
  out(json, r, `genesis ${r.id}: ${r.members} members, ${r.accounts} accounts → ${r.out}`)
  return 0
}
