/**
 * The kad-dht validator and selector of key records (namespace `nodus-key`): only a record for the
 * PeerId in the DHT key, valid now, with a good hybrid signature, is stored; of several, the highest
 * epoch wins.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { systemRandom } from '../../src/common/random.ts'
import {
  createKeyRecord,
  generateIdentity,
  XWING_SECRET_KEY_BYTES,
  xwingKeyPairFromSeed,
} from '../../src/crypto/index.ts'
import { keyRecordDhtKey, keyRecordSelector, keyRecordValidator } from '../../src/messaging/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'

const DAY = 24 * 3600 * 1000

describe('key records in the DHT', () => {
  it('the validator accepts a good record under its own PeerId only, while valid, and refuses a forged one', async () => {
    const clock = new FakeClock(1_800_000_000_000)
    const validate = keyRecordValidator(clock)
    const alice = await generateIdentity()
    const bob = await generateIdentity()
    const kp = xwingKeyPairFromSeed(systemRandom.bytes(XWING_SECRET_KEY_BYTES))
    const rec = await createKeyRecord(alice, kp, {
      epoch: 0,
      notBefore: clock.now(),
      notAfter: clock.now() + DAY,
    })
    const aliceKey = keyRecordDhtKey(alice.peerId.toString())
    validate(aliceKey, rec.bytes)
    const code = (fn: () => void): string => {
      try {
        fn()
      } catch (err) {
        assert.ok(isNodusError(err), String(err))
        return `${err.code}/${err.details.reason ?? ''}`
      }
      return 'accepted'
    }
    assert.equal(
      code(() => validate(keyRecordDhtKey(bob.peerId.toString()), rec.bytes)),
      'KEY_RECORD_INVALID/other-peer',
    )
    assert.equal(
      code(() => validate(new TextEncoder().encode('/nodus-key/'), rec.bytes)),
      'KEY_RECORD_INVALID/dht-key',
    )
    const forged = rec.bytes.slice()
    forged[forged.length - 10] = (forged[forged.length - 10] as number) ^ 1
    assert.match(
      code(() => validate(aliceKey, forged)),
      /^(SIGNATURE_INVALID|KEY_RECORD_INVALID)\//,
    )
    clock.advance(DAY)
    assert.equal(
      code(() => validate(aliceKey, rec.bytes)),
      'KEY_RECORD_INVALID/expired',
    )
  })

  it('the selector picks the highest epoch, then the latest notAfter, and never an undecodable record', async () => {
    const alice = await generateIdentity()
    const kp = xwingKeyPairFromSeed(systemRandom.bytes(XWING_SECRET_KEY_BYTES))
    const at = 1_800_000_000_000
    const e0 = await createKeyRecord(alice, kp, { epoch: 0, notBefore: at, notAfter: at + DAY })
    const e1 = await createKeyRecord(alice, kp, { epoch: 1, notBefore: at, notAfter: at + DAY })
    const e1later = await createKeyRecord(alice, kp, { epoch: 1, notBefore: at, notAfter: at + 2 * DAY })
    const select = keyRecordSelector()
    const key = keyRecordDhtKey(alice.peerId.toString())
    assert.equal(select(key, [e0.bytes, e1.bytes]), 1)
    assert.equal(select(key, [e1later.bytes, e0.bytes, e1.bytes]), 0)
    assert.equal(select(key, [new Uint8Array([1, 2, 3]), e0.bytes]), 1)
  })
})
