/**
 * Building blocks for the areas' metrics (`src/<area>/metrics.ts`): shared histogram buckets and gauges
 * read at scrape time. Metrics live on a registry per node (prom-client's `Registry`, never the global
 * one); names follow `nodus_<area>_<what>_<unit>`, times in seconds (docs/METRICS.md).
 */
import { Gauge, type Registry } from 'prom-client'

/** Latency buckets in seconds, from 0.5 ms to 30 s. */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
])

/**
 * Registers a gauge on `registry` whose value is read at scrape time: `read(source)` when `source()`
 * gives one (the composition root attaches the live sources once the node is built), and left as it
 * was (0) while it gives undefined.
 */
export function liveGauge<S>(
  registry: Registry,
  source: () => S | undefined,
  name: string,
  help: string,
  read: (s: S) => number,
): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      const s = source()
      if (s !== undefined) this.set(read(s))
    },
  })
}
