/**
 * The lifecycle every area follows, after js-libp2p's `Startable` (@libp2p/interface): the composition
 * root (src/node/node.ts) calls each phase on every area in build order when starting, and each stop
 * phase in reverse order when stopping. Every phase but `start`/`stop` is optional.
 *
 * - `beforeStart`: local resources that must exist before any peer can reach the node (open stores,
 *   load bans);
 * - `start`: network services (listen, register protocol handlers, timers);
 * - `afterStart`: actions that need every area running (dial bootstrap peers);
 * - `beforeStop`: stop producing work (timers, queues, background rounds), abort what is in flight;
 * - `stop`: stop network services;
 * - `afterStop`: close local resources once no handler can touch them.
 *
 * Each phase is idempotent and awaits in-flight work; none sleeps.
 */
export interface Startable {
  beforeStart?(): Promise<void> | void
  start(): Promise<void> | void
  afterStart?(): Promise<void> | void
  beforeStop?(): Promise<void> | void
  stop(): Promise<void> | void
  afterStop?(): Promise<void> | void
}

/** Start `areas` in order: every `beforeStart`, then every `start`, then every `afterStart`. */
export async function startAll(areas: readonly Startable[]): Promise<void> {
  for (const a of areas) await a.beforeStart?.()
  for (const a of areas) await a.start()
  for (const a of areas) await a.afterStart?.()
}

/** Stop `areas` in reverse order: every `beforeStop`, then every `stop`, then every `afterStop`. */
export async function stopAll(areas: readonly Startable[]): Promise<void> {
  const reversed = [...areas].reverse()
  for (const a of reversed) await a.beforeStop?.()
  for (const a of reversed) await a.stop()
  for (const a of reversed) await a.afterStop?.()
}
