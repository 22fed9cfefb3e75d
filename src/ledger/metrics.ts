/**
 * The ledger area's metrics (docs/METRICS.md): transactions by outcome, the committed height, batch
 * apply time. Pure: creates them on the registry given.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** Creates the ledger metrics on `registry`. */
export function createLedgerMetrics(registry: Registry) {
  const registers = [registry]
  return {
    ledgerTxs: new Counter({
      name: 'nodus_ledger_txs_total',
      help: 'Committed transactions the ledger applied, by outcome (applied, or the refusal code: LEDGER_TX_BAD_NONCE, LEDGER_TX_INSUFFICIENT_FUNDS, ...)',
      labelNames: ['outcome'],
      registers,
    }),
    ledgerHeight: new Gauge({
      name: 'nodus_ledger_height',
      help: 'Height of the last committed batch the ledger applied (0: genesis)',
      registers,
    }),
    ledgerTxChecks: new Counter({
      name: 'nodus_ledger_tx_checks_total',
      help: 'Committed transactions checked (decoded, signature verified) for the ledger, by when: early (when their vertex or submission arrived, before the commit) or at_commit',
      labelNames: ['when'],
      registers,
    }),
    ledgerBatchApplySeconds: new Histogram({
      name: 'nodus_ledger_batch_apply_seconds',
      help: 'Time to apply one group of committed batches (one write): their transactions, the state roots and the durable write',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
  }
}

/** The ledger metrics. */
export type LedgerMetrics = ReturnType<typeof createLedgerMetrics>
