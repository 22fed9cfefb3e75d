/**
 * Mana: a regenerating credit (ICN Core's design; issue 21). An account has a `balance`, a `capacity`,
 * a regeneration rate `regenPerSecond` and the commit time it was last brought up to date. Regeneration
 * is computed lazily, when a committed transaction touches the account, from COMMITTED timestamps only
 * (the batch's commit time, never a local clock), so every node computes the same balance. This is the
 * manabar of Steem/Hive (HF20, `libraries/chain/include/steem/chain/util/manabar.hpp`:
 * `current_mana += max_mana × Δt / regen_time`, capped at `max_mana`, `last_update_time = now`), with
 * two differences: the rate is absolute (mana per second, as ICN Core specified it), and the fraction of
 * a unit not yet regenerated is kept (`carry`, in thousandths of a unit) instead of dropped, so an
 * account touched every millisecond regenerates exactly as fast as one touched once a day
 * (regeneration over [a, c] equals regeneration over [a, b] then [b, c] while below capacity).
 *
 * Integer arithmetic only, exact: capacity ≤ 2^43 (tx.ts MAX_MANA_CAPACITY), so `capacity × 1000` and
 * every intermediate value stay below 2^53. The balance is never above the capacity, never negative.
 */

/** A mana account, as stored. All fields are non-negative safe integers. */
export interface ManaAccount {
  /** Mana held, ≤ `capacity`. */
  balance: number
  /** Most mana the account can hold, ≤ 2^43. */
  capacity: number
  /** Mana regenerated per second (of commit time) while below capacity. */
  regenPerSecond: number
  /** Commit time (Unix ms) up to which `balance` is regenerated. */
  lastUpdateMs: number
  /** Regeneration not yet a whole unit, thousandths of a unit, in [0, 1000). */
  carry: number
}

/**
 * Bring `m` up to commit time `nowMs` (mutates `m`; deterministic). A time at or before
 * `m.lastUpdateMs` changes nothing (commit timestamps are monotonic).
 *
 * @returns the whole units of mana added (0 when full, idle or no time passed)
 */
export function regenerate(m: ManaAccount, nowMs: number): number {
  if (nowMs <= m.lastUpdateMs) return 0
  const elapsedMs = nowMs - m.lastUpdateMs
  m.lastUpdateMs = nowMs
  const need = m.capacity - m.balance
  if (need <= 0 || m.regenPerSecond === 0) {
    m.carry = 0
    return 0
  }
  // A float product is exact below 2^53 and rounds to at least 2^53 above, so this test is exact; and
  // need × 1000 < 2^53, so an overflowing product always fills the account.
  const product = m.regenPerSecond * elapsedMs
  const total = product + m.carry
  if (product > Number.MAX_SAFE_INTEGER || total > Number.MAX_SAFE_INTEGER) return fill(m, need)
  const carry = total % 1000
  const units = (total - carry) / 1000
  if (units >= need) return fill(m, need)
  m.balance += units
  m.carry = carry
  return units
}

function fill(m: ManaAccount, need: number): number {
  m.balance = m.capacity
  m.carry = 0
  return need
}

/**
 * The account as it would be at `nowMs`, without changing `m` (a read: balances shown to users).
 */
export function manaAt(m: ManaAccount, nowMs: number): ManaAccount {
  const copy = { ...m }
  regenerate(copy, nowMs)
  return copy
}

/**
 * Set a new capacity and rate at commit time `nowMs` (regenerating under the old ones first). A
 * balance above the new capacity is cut to it.
 *
 * @returns `{ gained, clipped }`: units regenerated before the change, units cut by it
 */
export function reconfigure(
  m: ManaAccount,
  nowMs: number,
  capacity: number,
  regenPerSecond: number,
): { gained: number; clipped: number } {
  const gained = regenerate(m, nowMs)
  m.lastUpdateMs = Math.max(m.lastUpdateMs, nowMs)
  m.capacity = capacity
  m.regenPerSecond = regenPerSecond
  let clipped = 0
  if (m.balance > capacity) {
    clipped = m.balance - capacity
    m.balance = capacity
  }
  if (m.balance === capacity) m.carry = 0
  return { gained, clipped }
}

/** A new, empty mana account at commit time `nowMs` (capacity 0: holds nothing until configured). */
export function emptyMana(nowMs: number): ManaAccount {
  return { balance: 0, capacity: 0, regenPerSecond: 0, lastUpdateMs: nowMs, carry: 0 }
}
