/**
 * Runs a reconciliation session between two in-process {@link Reconciler}s, passing each message to
 * the other side directly: for tests, benchmarks and the simulator. Counts messages, round trips and
 * bytes each way; collects what each side learned.
 */
import type { Reconciler } from './protocol.ts'

/** What a session exchanged and what each side learned (keys deduplicated, in key order). */
export interface SessionReport {
  /** Messages both ways / 2, rounded up (a last message that asks for no answer counts as a half). */
  roundTrips: number
  /** Bytes the initiator sent. */
  initiatorBytes: number
  /** Bytes the responder sent. */
  responderBytes: number
  /** Keys of ops the initiator lacks (the responder holds). */
  initiatorNeed: Uint8Array[]
  /** Keys of ops the responder lacks (the initiator holds). */
  initiatorHave: Uint8Array[]
  /** Keys the responder found it lacks: the same set as `initiatorHave`. */
  responderNeed: Uint8Array[]
  /** Keys the responder found the initiator lacks: the same set as `initiatorNeed`. */
  responderHave: Uint8Array[]
  /** Size of every message, in order (initiator first, then alternating). */
  messageBytes: number[]
}

class KeySet {
  readonly #map = new Map<string, Uint8Array>()
  add(keys: Uint8Array[]): void {
    for (const k of keys) this.#map.set(Buffer.from(k).toString('hex'), k)
  }
  sorted(): Uint8Array[] {
    return [...this.#map.values()].sort(Buffer.compare)
  }
}

/**
 * Reconciles `initiator` (fresh, role initiator) with `responder` (fresh, role responder) until a
 * side expects no answer. Errors either side throws propagate.
 */
export function reconcile(initiator: Reconciler, responder: Reconciler): SessionReport {
  const learned = new Map<Reconciler, { need: KeySet; have: KeySet }>([
    [initiator, { need: new KeySet(), have: new KeySet() }],
    [responder, { need: new KeySet(), have: new KeySet() }],
  ])
  const messageBytes: number[] = []
  const sent = { initiator: 0, responder: 0 }
  let msg: Uint8Array | undefined = initiator.initiate()
  let from = initiator
  let to = responder
  while (msg !== undefined) {
    messageBytes.push(msg.length)
    sent[from.role] += msg.length
    const result = to.receive(msg)
    learned.get(to)?.need.add(result.need)
    learned.get(to)?.have.add(result.have)
    msg = result.message
    ;[from, to] = [to, from]
  }
  const i = learned.get(initiator) as { need: KeySet; have: KeySet }
  const r = learned.get(responder) as { need: KeySet; have: KeySet }
  return {
    roundTrips: Math.ceil(messageBytes.length / 2),
    initiatorBytes: sent.initiator,
    responderBytes: sent.responder,
    initiatorNeed: i.need.sorted(),
    initiatorHave: i.have.sorted(),
    responderNeed: r.need.sorted(),
    responderHave: r.have.sorted(),
    messageBytes,
  }
}
