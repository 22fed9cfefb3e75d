/** Types of format.js (the dashboard's number and payload formatting), for the Node tests that import it. */
export function formatBytes(n: number | null | undefined): string
export function formatNumber(n: number | null | undefined): string
export function formatSeconds(s: number): string
export function formatTime(ms: number | null | undefined): string
export function orDash<T>(format: (v: T) => string, v: T | null | undefined): string
export function shorten(id: string, head?: number, tail?: number): string
export function decodeBase64(b64: string): Uint8Array
export interface Preview {
  kind: 'text' | 'binary'
  /** The text (at most maxChars characters), or the first maxBytes bytes in hex (`68 65 6c`). */
  text: string
  truncated: boolean
}
export function previewBytes(bytes: Uint8Array, maxChars?: number, maxBytes?: number): Preview
