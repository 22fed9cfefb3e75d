/**
 * A KvEngine for tests: a fake clock at `nowMs`, inline signature checks, a seeded salt (so two
 * engines fed the same ops hold byte-identical stores, reconciliation tables included).
 */
import { seededRandom } from '../../src/common/random.ts'
import { SignatureVerifier } from '../../src/crypto/index.ts'
import { KvEngine } from '../../src/kv/engine.ts'
import { HlcClock } from '../../src/kv/hlc.ts'
import { DEFAULT_OP_LIMITS } from '../../src/kv/op.ts'
import type { OrderedStore } from '../../src/kv/store/ordered.ts'
import { FakeClock } from '../utils/fake-clock.ts'

/** An engine over `store`, its clock at `nowMs` (Unix ms). */
export function testEngine(store: OrderedStore, nowMs: number): KvEngine {
  const clock = new FakeClock(nowMs)
  const verifier = new SignatureVerifier()
  return new KvEngine(
    {
      store,
      clock,
      hlc: new HlcClock({ clock }, { maxFutureSkewMs: 60_000 }),
      random: seededRandom(7),
      verify: async (check) => verifier.verify(check),
    },
    { limits: DEFAULT_OP_LIMITS },
  )
}
