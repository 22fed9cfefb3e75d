/**
 * The workload and the measurements of `nodus sim consensus`: Ed25519 keys from the seed (validators
 * and accounts), the ledger genesis the accounts start with, a seeded stream of signed mana transfers,
 * a signature check that verifies each distinct signature once (every honest node would reach the same
 * answer; the simulator does not pay for it n times), and the finality tracker (submission → committed
 * at every correct node).
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { blake3, type SignatureCheck, SignatureVerifier, signEd25519 } from '../crypto/index.ts'
import { encodeTx, type LedgerGenesis, type Tx, type TxSigner } from '../ledger/index.ts'
import type { Rng } from './rng.ts'
import { percentile, round } from './stats.ts'

/** Start of simulated time as a Unix timestamp, ms (commit timestamps are this + simulated ms). */
export const SIM_EPOCH_MS = 1_750_000_000_000

/** `count` Ed25519 keys, the i-th from 32 bytes derived from (seed, domain, i). */
export async function seededKeys(seed: number, domain: string, count: number): Promise<Ed25519PrivateKey[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      generateKeyPairFromSeed(
        'Ed25519',
        blake3(new TextEncoder().encode(`nodus/sim/${domain}/${seed}/${i}`)).subarray(0, 32),
      ),
    ),
  )
}

/** Hex of bytes (map keys). */
export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
}

/** The accounts sending transfers, and the ledger genesis holding them. */
export class TransferWorkload {
  readonly genesis: LedgerGenesis
  readonly #signers: TxSigner[]
  readonly #nonces: number[]
  readonly #rng: Rng

  private constructor(genesis: LedgerGenesis, signers: TxSigner[], rng: Rng) {
    this.genesis = genesis
    this.#signers = signers
    this.#nonces = signers.map(() => 0)
    this.#rng = rng
  }

  /**
   * @param signatures - real Ed25519 signatures; false: blank 64-byte ones (check with `verify: () => true`)
   */
  static async create(
    seed: number,
    accounts: number,
    signatures: boolean,
    rng: Rng,
  ): Promise<TransferWorkload> {
    const keys = await seededKeys(seed, 'account', accounts)
    const signers: TxSigner[] = keys.map((k) => ({
      publicKey: k.publicKey.raw,
      sign: signatures ? (m: Uint8Array) => signEd25519(k, m) : () => new Uint8Array(64),
    }))
    const genesis: LedgerGenesis = {
      chain: blake3(new TextEncoder().encode(`nodus/sim/chain/${seed}`)),
      timestampMs: SIM_EPOCH_MS,
      accounts: signers.map((s) => ({
        account: s.publicKey,
        balance: 1_000_000,
        capacity: 10_000_000,
        regenPerSecond: 100,
      })),
    }
    return new TransferWorkload(genesis, signers, rng)
  }

  /** The next transfer: a random account pays 1–100 mana to another, with its next nonce. */
  async next(): Promise<Tx> {
    const n = this.#signers.length
    const from = this.#rng.nextInt(n)
    const to = (from + 1 + this.#rng.nextInt(n - 1)) % n
    const nonce = this.#nonces[from] as number
    this.#nonces[from] = nonce + 1
    const signer = this.#signers[from] as TxSigner
    return encodeTx(
      {
        chain: this.genesis.chain,
        nonce,
        kind: 'transfer',
        to: (this.#signers[to] as TxSigner).publicKey,
        amount: 1 + this.#rng.nextInt(100),
      },
      signer,
    )
  }
}

/** A signature check that verifies each distinct (signature, message) once; `() => true` when off. */
export function cachedVerify(signatures: boolean): (check: SignatureCheck) => boolean {
  if (!signatures) return () => true
  const verifier = new SignatureVerifier()
  const seen = new Map<string, boolean>()
  return (check) => {
    if (check.scheme !== 'ed25519') return verifier.verify(check)
    const key = hex(check.signature) + hex(blake3(check.message))
    let ok = seen.get(key)
    if (ok === undefined) {
      ok = verifier.verify(check)
      seen.set(key, ok)
    }
    return ok
  }
}

/**
 * Finality per transaction: from submission to the moment the last of the `correct` nodes committed
 * it (simulated ms).
 */
export class FinalityTracker {
  readonly #correct: number
  readonly #txs = new Map<string, { submittedAt: number; commits: number }>()
  readonly finalityMs: number[] = []
  submitted = 0

  /** @param correct - how many nodes must commit a transaction for it to count as final */
  constructor(correct: number) {
    this.#correct = correct
  }

  submit(id: string, atMs: number): void {
    this.submitted++
    this.#txs.set(id, { submittedAt: atMs, commits: 0 })
  }

  /** A correct node committed `id` at `atMs` (each node reports a transaction once). */
  commit(id: string, atMs: number): void {
    const t = this.#txs.get(id)
    if (t === undefined) return
    t.commits++
    if (t.commits === this.#correct) {
      this.finalityMs.push(atMs - t.submittedAt)
      this.#txs.delete(id)
    }
  }

  /** p50 and p99 finality, ms (null without final transactions). */
  summary(): { p50FinalityMs: number | null; p99FinalityMs: number | null; finalTxs: number } {
    const f = this.finalityMs
    return {
      p50FinalityMs: f.length === 0 ? null : round(percentile(f, 50), 1),
      p99FinalityMs: f.length === 0 ? null : round(percentile(f, 99), 1),
      finalTxs: f.length,
    }
  }
}

/** One protocol's line of the report. */
export interface ProtocolReport {
  protocol: 'mysticeti' | 'snowball'
  validators: number
  byzantine: number
  /** Simulated ms the run covered. */
  simulatedMs: number
  /** Submission → committed (finalized) at every correct node, ms. */
  p50FinalityMs: number | null
  p99FinalityMs: number | null
  /** Commits (Mysticeti: committed leaders; Snowball: decisions finalized at every correct node). */
  commits: number
  submittedTxs: number
  /** Transactions final at every correct node. */
  committedTxs: number
  /** committedTxs per simulated second. */
  committedTxsPerSecond: number
  /** Honest nodes that committed different things at one height (Snowball: finalized different values). */
  safetyViolations: number
  /** Liveness lost: no commit (decision) in the last part of the run, or the committer halted. */
  halted: boolean
  /** Mysticeti: ledger state roots of honest nodes equal at their common height (null: not applicable). */
  stateRootsEqual: boolean | null
  /** Extra protocol-specific figures. */
  details: Record<string, unknown>
}
