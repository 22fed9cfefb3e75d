/**
 * Ops for the state machine's tests, built directly (the state machine trusts its input; envelopes,
 * signatures and authority are op.ts's). An op's id is the BLAKE3 of the dag-cbor of its body, so the
 * same body gives the same op and different bodies (HLCs) different ids.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { blake3 } from '../../src/crypto/blake3.ts'
import type { Hlc, KvType, KvValue, Op, OpBody } from '../../src/kv/op-types.ts'
import { applyOp } from '../../src/kv/state/apply.ts'
import type { OrderedStore } from '../../src/kv/store/ordered.ts'

export const DB = 'app-owner1'
const SIGNER = new Uint8Array(32).fill(7)

/** Extra body fields of {@link makeOp}: `at` is the HLC (ms, or {ms, c}). */
export interface OpExtra {
  at: number | Hlc
  field?: string
  expireAt?: number
  db?: string
}

/** An op of `type` `op` on `key` with `args`, at HLC `extra.at`. */
export function makeOp(type: KvType, op: string, key: string, args: KvValue[], extra: OpExtra): Op {
  const hlc = typeof extra.at === 'number' ? { ms: extra.at, c: 0 } : extra.at
  const body: OpBody = { v: 1, db: extra.db ?? DB, key, type, op, args, hlc, signer: SIGNER }
  if (extra.field !== undefined) body.field = extra.field
  if (extra.expireAt !== undefined) body.expireAt = extra.expireAt
  const bytes = dagCbor.encode(body)
  return { body, id: blake3(bytes), bytes }
}

/** Apply `ops` in order in one write. */
export async function apply(store: OrderedStore, ...ops: Op[]): Promise<void> {
  await store.write((w) => {
    for (const op of ops) applyOp(w, op)
  })
}

/** Every key and value of the store, hex, in key order (two stores hold the same state iff equal). */
export function dump(store: OrderedStore): string[] {
  return [...store.range()].map(
    ([k, v]) => `${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`,
  )
}

/** A read option at `nowMs` (default 0: nothing expired). */
export const at = (nowMs = 0): { nowMs: number } => ({ nowMs })
