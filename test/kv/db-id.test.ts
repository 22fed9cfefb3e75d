import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { base58btc } from 'multiformats/bases/base58'
import { isNodusError } from '../../src/common/errors.ts'
import { identityFromSeeds } from '../../src/crypto/index.ts'
import { formatDbId, isValidOwnerKey, ownerKeyId, parseDbId } from '../../src/kv/db-id.ts'
import { assertProperty } from '../utils/property.ts'

const owner = (await identityFromSeeds(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2))).ed25519
  .publicKey.raw
const keyId = ownerKeyId(owner)
const invalidId = (reason?: string) => (e: unknown) =>
  isNodusError(e, 'KV_DB_ID_INVALID') && (reason === undefined || e.details.reason === reason)

describe('database ids', () => {
  it('format as <name>-<z6Mk…> and parse back', () => {
    assert.match(keyId, /^z6Mk[1-9A-HJ-NP-Za-km-z]+$/)
    const id = formatDbId('sensors', owner)
    assert.equal(id, `sensors-${keyId}`)
    const parsed = parseDbId(id)
    assert.deepEqual(parsed, { id, name: 'sensors', ownerKeyId: keyId, owner })
    assert.ok(isValidOwnerKey(parsed))
  })

  it('allow dashes, dots and underscores in a name (the id splits at its last dash)', () => {
    for (const name of ['a', 'my-app.logs_2', '0', 'x'.repeat(64), 'a--b']) {
      assert.equal(parseDbId(formatDbId(name, owner)).name, name)
    }
  })

  it('refuse bad names', () => {
    for (const name of ['', 'Logs', '-a', '.a', '_a', 'x'.repeat(65), 'a b', 'é', 'a/b', 'a:b']) {
      assert.throws(() => formatDbId(name, owner), invalidId(), name)
      assert.throws(() => parseDbId(`${name}-${keyId}`), invalidId(), name)
    }
  })

  it('refuse a bad owner key id', () => {
    const x25519 = base58btc.encode(Uint8Array.of(0xec, 0x01, ...owner))
    const short = base58btc.encode(Uint8Array.of(0xed, 0x01, ...owner.subarray(1)))
    for (const id of [
      'sensors',
      `sensors-`,
      `sensors${keyId}`,
      `sensors-${keyId.slice(1)}`,
      `sensors-${keyId}0`,
      `sensors-${x25519}`,
      `sensors-${short}`,
      `sensors-${'z'.repeat(120)}`,
    ]) {
      assert.throws(() => parseDbId(id), invalidId(), id)
    }
    assert.throws(() => parseDbId(42 as unknown as string), invalidId())
  })

  it('check the owner key is a large-order point, unless told not to', () => {
    // The identity point (y = 1): small order, so anyone could forge "signatures" under it.
    const identity = new Uint8Array(32)
    identity[0] = 1
    const id = `logs-${base58btc.encode(Uint8Array.of(0xed, 0x01, ...identity))}`
    assert.throws(() => parseDbId(id), invalidId('owner key id'))
    const unchecked = parseDbId(id, { checkKey: false })
    assert.deepEqual(unchecked.owner, identity)
    assert.equal(isValidOwnerKey(unchecked), false)
    assert.throws(
      () => formatDbId('logs', identity),
      (e) => isNodusError(e, 'KEY_INVALID'),
    )
  })

  it('round-trip every valid name (property)', () => {
    const name = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,63}$/)
    assertProperty(
      fc.property(name, (n) => {
        const parsed = parseDbId(formatDbId(n, owner), { checkKey: false })
        assert.equal(parsed.name, n)
        assert.deepEqual(parsed.owner, owner)
      }),
    )
  })
})
