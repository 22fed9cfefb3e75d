/**
 * The ledger routes (src/ledger/routes.ts) through `app.inject()`: POST /ledger/tx is not counted
 * against the token holder's rate limit (the transaction pool bounds it), strangers still get 401/429.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { LedgerArea } from '../../src/ledger/area.ts'
import { ledgerRoutes } from '../../src/ledger/routes.ts'
import { AUTH, routesApi } from '../utils/api-node.ts'

test('POST /ledger/tx: the token holder submits past api.mutatingPerMinute; strangers get 401 then 429', async (t) => {
  const submitted: Uint8Array[] = []
  // Only checkTx is reached on the no-wait path.
  const ledger = { checkTx: async (b: Uint8Array) => b.subarray(0, 32) } as unknown as LedgerArea
  const server = await routesApi([ledgerRoutes({ ledger, submit: async (tx) => void submitted.push(tx) })], {
    mutatingPerMinute: 2,
    unauthenticatedPerMinute: 1,
  })
  t.after(() => server.close())
  const body = (i: number) => ({ tx: Buffer.alloc(40, i).toString('base64') })
  for (let i = 0; i < 10; i++) {
    const r = await server.app.inject({ method: 'POST', url: '/ledger/tx', headers: AUTH, payload: body(i) })
    assert.equal(r.statusCode, 200, `submission ${i}: ${r.body}`)
    assert.equal(r.json().status, 'submitted')
  }
  assert.equal(submitted.length, 10)
  const anon = await server.app.inject({ method: 'POST', url: '/ledger/tx', payload: body(0) })
  assert.equal(anon.statusCode, 401)
  const anonAgain = await server.app.inject({ method: 'POST', url: '/ledger/tx', payload: body(0) })
  assert.equal(anonAgain.statusCode, 429)
  assert.equal(submitted.length, 10)
})
