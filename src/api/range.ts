/** HTTP `Range` requests (RFC 9110 §14): one byte range against a known size. */

/**
 * Parse one `bytes=a-b` range (`bytes=a-` and `bytes=-suffix` too) against a size in bytes. Returns
 * the bytes to serve as `{ offset, length }`; `'unsatisfiable'` (answer 416) when the range starts at
 * or past `size`, ends before it starts, or is the empty suffix `bytes=-0`; undefined when there is no
 * usable range (no header, a malformed one, several ranges, another unit): serve the whole file.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { offset: number; length: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (m === null || (m[1] === '' && m[2] === '')) return undefined
  let start: number
  let end: number
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0) return 'unsatisfiable'
    start = Math.max(0, size - suffix)
    end = size - 1
  } else {
    start = Number(m[1])
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  }
  if (start >= size || start > end) return 'unsatisfiable'
  return { offset: start, length: end - start + 1 }
}
