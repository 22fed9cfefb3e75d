/**
 * How `nodus kv` writes: it signs every operation here, with a key from an identity directory, and
 * hands the node only the signed envelope (POST /kv/ops), so the private key never leaves the CLI.
 *
 * - **Key.** The identity in `<dir>/keys/` (src/crypto keys.ts): by default the node's own data
 *   directory, or `--key-dir DIR` (any directory made by `nodus init`). Ed25519 signs a normal
 *   database's operations; the hybrid key (Ed25519 + ML-DSA-65) a hybrid one's.
 * - **Clock.** A hybrid logical clock (src/kv/hlc.ts) over the system clock, whose last timestamp is
 *   saved in `<dir>/kv-cli.json` before each operation is sent, so a later run never dates an
 *   operation before an earlier one, even when the wall clock went back. Two CLI processes writing
 *   with one directory at the same moment may issue one timestamp twice (the op ids still differ, and
 *   the merge order breaks the tie by id).
 * - **Per database** (in the same file): whether it is hybrid (`create --hybrid`), and the grant id a
 *   writer that is not the owner signs with (`--cap`, remembered after the first write it allowed).
 */
import { randomBytes } from 'node:crypto'
import { open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { systemClock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import { HTTP_STATUS } from '../config/index.ts'
import { didKeyFromEd25519, ed25519FromDidKey, loadIdentity, type NodeIdentity } from '../crypto/index.ts'
import {
  DB_NAME_PATTERN,
  ed25519OpSigner,
  encodeOp,
  formatDbId,
  type Hlc,
  HlcClock,
  HYBRID_SIGNER_BYTES,
  hybridOpSigner,
  isHlc,
  type Op,
  type OpInput,
  type OpSigner,
  parseDbId,
  signerBytes,
} from '../kv/index.ts'
import { KV_OPTIONS } from '../kv/options.ts'
import { type ApiTarget, postJson } from './client.ts'

/** The file, in the identity directory, holding the CLI's HLC and what it knows per database. */
export const KV_CLI_STATE_FILE = 'kv-cli.json'

interface DbState {
  hybrid?: boolean
  /** Hex id of the grant this identity writes with. */
  cap?: string
}

interface KvCliState {
  hlc: Hlc
  dbs: Record<string, DbState>
}

/** One op's answer from POST /kv/ops. */
interface OpResult {
  id?: string
  status: 'applied' | 'duplicate' | 'refused'
  code?: string
  message?: string
}

/** What a write submitted: the database, the op's id (hex) and its HLC. */
export interface Written {
  db: string
  id: string
  hlc: Hlc
  status: 'applied' | 'duplicate'
}

const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/**
 * Bytes from hex of one of `lengths` bytes.
 * @throws NodusError `INVALID_ARGUMENT` naming `what`
 */
export function hexBytes(text: string, what: string, lengths: readonly number[]): Uint8Array {
  if (!/^[0-9a-f]*$/i.test(text) || !lengths.includes(text.length / 2))
    throw new NodusError(
      'INVALID_ARGUMENT',
      `${what} must be ${lengths.map((n) => n * 2).join(' or ')} hex digits`,
    )
  return new Uint8Array(Buffer.from(text, 'hex'))
}

/**
 * A writer's public key as the owner names it in `grant`: `did:key:z6Mk…`, `z6Mk…`, an Ed25519 PeerId
 * (`12D3KooW…`), or hex (64 digits for Ed25519, 3,968 for a hybrid key, as `nodus kv key` prints).
 * @throws NodusError `INVALID_ARGUMENT`
 */
export function parseWriterKey(text: string): Uint8Array {
  if (/^[0-9a-f]+$/i.test(text)) return hexBytes(text, 'a writer key', [32, HYBRID_SIGNER_BYTES])
  try {
    if (text.startsWith('did:key:')) return ed25519FromDidKey(text)
    if (text.startsWith('z6Mk')) return ed25519FromDidKey(`did:key:${text}`)
    const peer = peerIdFromString(text)
    if (peer.type === 'Ed25519') return peer.publicKey.raw
  } catch (err) {
    throw new NodusError('INVALID_ARGUMENT', `not a writer key: ${text.slice(0, 80)}`, { cause: err })
  }
  throw new NodusError(
    'INVALID_ARGUMENT',
    'a writer key is a did:key, a z6Mk… key id, an Ed25519 PeerId, or hex (`nodus kv key` prints them)',
  )
}

/** The CLI's signing identity and its state file (module doc). */
export class KvWriter {
  readonly identity: NodeIdentity
  readonly #file: string
  #state: KvCliState

  private constructor(identity: NodeIdentity, file: string, state: KvCliState) {
    this.identity = identity
    this.#file = file
    this.#state = state
  }

  /**
   * Load the identity in `dir/keys/` and the state in `dir/kv-cli.json` (empty when absent).
   * @throws NodusError `KEYS_MISSING`, `KEY_INVALID`; `INVALID_ARGUMENT` for a corrupt state file
   */
  static async open(dir: string): Promise<KvWriter> {
    const identity = await loadIdentity(dir)
    const file = join(dir, KV_CLI_STATE_FILE)
    let state: KvCliState = { hlc: { ms: 0, c: 0 }, dbs: {} }
    let text: string | undefined
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    if (text !== undefined) {
      const parsed = ((): Partial<KvCliState> => {
        try {
          return JSON.parse(text) as Partial<KvCliState>
        } catch {
          return {}
        }
      })()
      if (!isHlc(parsed.hlc) || typeof parsed.dbs !== 'object' || parsed.dbs === null)
        throw new NodusError(
          'INVALID_ARGUMENT',
          `${file} is corrupt: fix or remove it (its HLC keeps writes in order)`,
        )
      state = { hlc: parsed.hlc, dbs: parsed.dbs }
    }
    return new KvWriter(identity, file, state)
  }

  /** The Ed25519 public key, 32 bytes: the owner key of the databases this identity creates. */
  get ownerKey(): Uint8Array {
    return this.identity.ed25519.publicKey.raw
  }

  /** `did:key:z6Mk…` of {@link ownerKey}. */
  get did(): string {
    return didKeyFromEd25519(this.ownerKey)
  }

  /** The signer: hybrid for a hybrid database (`hybrid`, or known to be one), else Ed25519. */
  signer(db: string, hybrid = false): OpSigner {
    return hybrid || this.#state.dbs[db]?.hybrid === true
      ? hybridOpSigner(this.identity)
      : ed25519OpSigner(this.identity.ed25519)
  }

  /** The hybrid signer key (Ed25519 ‖ ML-DSA-65) as hex: what an owner grants to a hybrid writer. */
  hybridKeyHex(): string {
    return hexOf(signerBytes(hybridOpSigner(this.identity)))
  }

  /**
   * A database id from `--db`: an id as it is, or a bare name (no `-z6Mk…` suffix) as this
   * identity's database of that name.
   * @throws NodusError `KV_DB_ID_INVALID`
   */
  dbId(text: string): string {
    try {
      return parseDbId(text, { checkKey: false }).id
    } catch (err) {
      if (DB_NAME_PATTERN.test(text)) return formatDbId(text, this.ownerKey)
      throw err
    }
  }

  /** True when this identity owns `db`. */
  owns(db: string): boolean {
    return Buffer.from(parseDbId(db, { checkKey: false }).owner).equals(Buffer.from(this.ownerKey))
  }

  /**
   * Sign `input` (with a fresh HLC, saved first) and submit it to the node.
   *
   * @param options.hybrid - sign with the hybrid key (`create --hybrid`; remembered for the database)
   * @param options.cap - the grant id (hex) a writer that is not the owner writes with; default the
   *   one remembered for the database (remembered once an op with it is applied)
   * @throws the node's refusal as its NodusError (`KV_UNAUTHORIZED`, `KV_ARGS_INVALID`, `KV_OP_TOO_LARGE`,
   *   …; PROTOCOL_ERROR for a code this CLI does not know), `NODE_UNREACHABLE`
   */
  async write(
    api: ApiTarget,
    input: Omit<OpInput, 'hlc' | 'cap'>,
    options: { hybrid?: boolean; cap?: string; signal?: AbortSignal } = {},
  ): Promise<Written & { op: Op }> {
    const db = input.db
    const known = this.#state.dbs[db] ?? {}
    const cap = this.owns(db) ? undefined : (options.cap ?? known.cap)
    const clock = new HlcClock(
      { clock: systemClock },
      { maxFutureSkewMs: KV_OPTIONS.maxFutureSkewMs.default, last: this.#state.hlc },
    )
    const hlc = clock.now()
    this.#state.hlc = hlc
    await this.#save()
    const op = await encodeOp(
      { ...input, hlc, ...(cap === undefined ? {} : { cap: hexBytes(cap, '--cap', [32]) }) },
      this.signer(db, options.hybrid),
      options.signal === undefined ? {} : { signal: options.signal },
    )
    const { results } = await postJson<{ results: OpResult[] }>(
      api,
      '/kv/ops',
      { ops: [Buffer.from(op.bytes).toString('base64')] },
      options.signal,
    )
    const r = results[0]
    if (r === undefined) throw new NodusError('PROTOCOL_ERROR', 'the node answered no result for the op')
    if (r.status === 'refused') throw this.#refusal(r, db, cap)
    const remember: DbState = { ...known }
    if (options.hybrid === true) remember.hybrid = true
    if (cap !== undefined) remember.cap = cap
    if (remember.hybrid !== known.hybrid || remember.cap !== known.cap) {
      this.#state.dbs[db] = remember
      await this.#save()
    }
    return { db, id: r.id ?? hexOf(op.id), hlc, status: r.status, op }
  }

  #refusal(r: OpResult, db: string, cap: string | undefined): NodusError {
    const code = r.code !== undefined && r.code in HTTP_STATUS ? r.code : 'PROTOCOL_ERROR'
    let message = r.message ?? 'the node refused the operation'
    // The node's message says which rule refused it (src/kv/auth.ts); add what to do from here.
    if (code === 'KV_UNAUTHORIZED') {
      if (/create is not held/.test(message))
        message +=
          ' (check the database id; `nodus kv host DB` fetches a database this node does not hold yet)'
      else if (/hybrid/.test(message)) message += ' (sign with --hybrid)'
      else if (!this.owns(db))
        message +=
          cap === undefined
            ? ` (signed by ${this.did}, not the owner: a writer needs the owner's \`nodus kv grant\`, then --cap GRANT_ID)`
            : ` (signed by ${this.did} with the grant ${cap})`
    }
    return new NodusError(code as NodusError['code'], message, {
      details: { db, ...(r.id === undefined ? {} : { id: r.id }) },
    })
  }

  /** Write the state file atomically (temp file, fsync, rename). */
  async #save(): Promise<void> {
    const tmp = `${this.#file}.${randomBytes(6).toString('hex')}.tmp`
    const fh = await open(tmp, 'wx', 0o600)
    try {
      await fh.writeFile(`${JSON.stringify(this.#state)}\n`)
      await fh.sync()
      await fh.close()
      await rename(tmp, this.#file)
    } catch (err) {
      await fh.close().catch(() => {})
      await rm(tmp, { force: true })
      throw err
    }
  }
}
