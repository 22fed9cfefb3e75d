/**
 * The `ledger` section of a consensus genesis file (src/consensus/genesis.ts keeps it opaque): the
 * JSON form of a {@link LedgerGenesis} without `chain` and `timestampMs`, which come from the genesis
 * itself (its id and `createdAtMs`). Keys are lower-case hex:
 *
 * ```json
 * { "manaAuthority": "<64 hex>",
 *   "accounts": [{ "account": "<64 hex>", "balance": 1000, "capacity": 10000, "regenPerSecond": 10 }],
 *   "tokens": [{ "issuer": "<64 hex>", "name": "gold", "balances": [{ "holder": "<64 hex>", "amount": 5 }] }] }
 * ```
 */
import { NodusError } from '../common/errors.ts'
import type { LedgerGenesis } from './genesis.ts'

function invalid(reason: string): NodusError {
  return new NodusError('LEDGER_GENESIS_INVALID', `ledger genesis section: ${reason}`, {
    details: { reason },
  })
}

function key(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v))
    throw invalid(`${what} must be 64 lower-case hex digits`)
  return new Uint8Array(Buffer.from(v, 'hex'))
}

function list(v: unknown, what: string): unknown[] {
  if (v === undefined) return []
  if (!Array.isArray(v)) throw invalid(`${what} must be a list`)
  return v
}

function map(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${what} must be a map`)
  return v as Record<string, unknown>
}

/**
 * The ledger genesis of a consensus genesis: `chain` its id (32 bytes), `timestampMs` its
 * `createdAtMs`, `committee` its epoch, leader seed, signature mode and members (when the body has
 * them: the committee as ledger state, committee.ts), the rest from its `ledger` section (module doc). Amounts are checked later by
 * `genesisEntries` (Ledger.open).
 * @throws NodusError `LEDGER_GENESIS_INVALID` on a malformed section
 */
export function ledgerGenesisOf(g: {
  id: Uint8Array
  body: {
    createdAtMs: number
    ledger: Record<string, unknown>
    epoch?: number
    leaderSeed?: Uint8Array
    signatureMode?: 'ed25519' | 'hybrid'
    members?: readonly { ed25519: Uint8Array; mldsa65?: Uint8Array; name?: string }[]
  }
}): LedgerGenesis {
  const s = map(g.body.ledger, 'ledger')
  const accounts = list(s.accounts, 'accounts').map((raw, i) => {
    const a = map(raw, `accounts[${i}]`)
    return {
      account: key(a.account, `accounts[${i}].account`),
      balance: a.balance as number,
      capacity: a.capacity as number,
      regenPerSecond: a.regenPerSecond as number,
    }
  })
  const tokens = list(s.tokens, 'tokens').map((raw, i) => {
    const t = map(raw, `tokens[${i}]`)
    return {
      issuer: key(t.issuer, `tokens[${i}].issuer`),
      name: t.name as string,
      balances: list(t.balances, `tokens[${i}].balances`).map((rb, j) => {
        const b = map(rb, `tokens[${i}].balances[${j}]`)
        return { holder: key(b.holder, `tokens[${i}].balances[${j}].holder`), amount: b.amount as number }
      }),
    }
  })
  const b = g.body
  const committee =
    b.members === undefined || b.leaderSeed === undefined
      ? {}
      : {
          committee: {
            epoch: b.epoch ?? 0,
            leaderSeed: b.leaderSeed,
            signatureMode: b.signatureMode ?? 'ed25519',
            members: b.members,
          },
        }
  return {
    chain: g.id,
    timestampMs: g.body.createdAtMs,
    accounts,
    tokens,
    ...committee,
    ...(s.manaAuthority === undefined ? {} : { manaAuthority: key(s.manaAuthority, 'manaAuthority') }),
  }
}
