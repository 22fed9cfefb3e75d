import type { EventEmitter } from 'node:events'
import { NodusError } from './errors.ts'

/**
 * Resolves on the writable's next 'drain'. Rejects with `closedError()` if it emits 'close' first
 * (default NodusError STREAM_CLOSED), with the error if it emits 'error', or with the signal's reason
 * when `signal` aborts. Unlike `events.once(w, 'drain')` it cannot hang on a stream that closes
 * without an error.
 */
export function drained(
  w: EventEmitter,
  signal?: AbortSignal,
  closedError: () => Error = () => new NodusError('STREAM_CLOSED', 'closed while sending'),
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (err?: unknown): void => {
      w.off('drain', onDrain)
      w.off('close', onClose)
      w.off('error', done)
      signal?.removeEventListener('abort', onAbort)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(closedError())
    const onAbort = (): void => done(signal?.reason)
    w.on('drain', onDrain)
    w.on('close', onClose)
    w.on('error', done)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
