import type { Clock } from '../../src/common/clock.ts'
import { seededRandom } from '../../src/common/random.ts'
import { SignatureVerifier } from '../../src/crypto/index.ts'
import { KvEngine } from '../../src/kv/engine.ts'
import { HlcClock } from '../../src/kv/hlc.ts'
import { DEFAULT_OP_LIMITS } from '../../src/kv/op.ts'
import type { ByteQuota } from '../../src/kv/quota.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'

/**
 * A kv engine on a MemoryOrderedStore that verifies signatures inline, reading `clock` (a FakeClock in
 * unit tests), with the default op limits and `quota` (default none).
 */
export function memoryKvEngine(
  clock: Clock,
  quota?: ByteQuota,
): { engine: KvEngine; store: MemoryOrderedStore } {
  const store = new MemoryOrderedStore()
  const verifier = new SignatureVerifier()
  const engine = new KvEngine(
    {
      store,
      clock,
      hlc: new HlcClock({ clock }, { maxFutureSkewMs: 60_000 }),
      random: seededRandom(7),
      verify: async (check) => verifier.verify(check),
    },
    { limits: DEFAULT_OP_LIMITS, ...(quota === undefined ? {} : { quota }) },
  )
  return { engine, store }
}
