// The public surface of kv, as listed in README.md (one export line per module).
export * from './op-types.ts'
export * from './reconcile/fingerprint.ts'
export * from './reconcile/fingerprint-index.ts'
export * from './reconcile/harness.ts'
export * from './reconcile/protocol.ts'
export * from './reconcile/wire.ts'
export * from './store/ordered.ts'
