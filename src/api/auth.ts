import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * Constant-time check of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 7235).
 * Both tokens are hashed (SHA-256) first, so the comparison takes the same time whatever the given
 * token's length or content. An empty `token` matches nothing.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (token === '' || header === undefined || header.slice(0, 7).toLowerCase() !== 'bearer ') return false
  const given = createHash('sha256').update(header.slice(7).trim()).digest()
  const want = createHash('sha256').update(token).digest()
  return timingSafeEqual(given, want)
}
