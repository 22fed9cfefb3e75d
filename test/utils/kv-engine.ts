/**
 * Kv engines for tests: signatures verified inline, a seeded salt (so two engines fed the same ops
 * hold byte-identical stores, reconciliation tables included), the default op limits.
 */
import type { Clock } from '../../src/common/clock.ts'
import { seededRandom } from '../../src/common/random.ts'
import { SignatureVerifier } from '../../src/crypto/index.ts'
import { KvEngine } from '../../src/kv/engine.ts'
import { HlcClock } from '../../src/kv/hlc.ts'
import { DEFAULT_OP_LIMITS } from '../../src/kv/op.ts'
import type { ByteQuota } from '../../src/kv/quota.ts'
import { MemoryOrderedStore, type OrderedStore } from '../../src/kv/store/ordered.ts'
import { FakeClock } from './fake-clock.ts'

/** An engine over `store`, reading `clock` (a FakeClock in unit tests), with `quota` (default none). */
export function kvEngineOn(store: OrderedStore, clock: Clock, quota?: ByteQuota): KvEngine {
  const verifier = new SignatureVerifier()
  return new KvEngine(
    {
      store,
      clock,
      hlc: new HlcClock({ clock }, { maxFutureSkewMs: 60_000 }),
      random: seededRandom(7),
      verify: async (check) => verifier.verify(check),
    },
    { limits: DEFAULT_OP_LIMITS, ...(quota === undefined ? {} : { quota }) },
  )
}

/** An engine on a new MemoryOrderedStore (see {@link kvEngineOn}). */
export function memoryKvEngine(
  clock: Clock,
  quota?: ByteQuota,
): { engine: KvEngine; store: MemoryOrderedStore } {
  const store = new MemoryOrderedStore()
  return { engine: kvEngineOn(store, clock, quota), store }
}

/** An engine over `store`, a fake clock standing at `nowMs` (Unix ms). */
export function testEngine(store: OrderedStore, nowMs: number): KvEngine {
  return kvEngineOn(store, new FakeClock(nowMs))
}
