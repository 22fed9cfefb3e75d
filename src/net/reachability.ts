/**
 * Whether this node can be reached, from the addresses libp2p announces (`libp2p.getMultiaddrs()`,
 * which AutoNAT keeps honest: an observed address that peers fail to dial back is removed, one they
 * reach is confirmed; @libp2p/autonat, AutoNAT v1):
 *
 * - `public`: a direct address on a public IP (not loopback, private, link-local or CGNAT);
 * - `relayed`: no such address, but a relay reservation (`/p2p-circuit`): peers reach it through a relay;
 * - `private`: only loopback or private addresses (a devnet on one host, or a node behind NAT without
 *   a relay). AutoNAT asks peers only about public addresses, so on loopback it says nothing.
 */
import { cidrList } from '../common/cidr.ts'
import { isCircuitAddr } from './connections.ts'
import { ipOfAddr } from './gater.ts'

/** See the file comment. */
export type Reachability = 'public' | 'relayed' | 'private'

/** Loopback, RFC 1918, CGNAT (RFC 6598), link-local, unique-local IPv6 (RFC 4193), unspecified. */
const NOT_PUBLIC = cidrList([
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '::/128',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
])

/** True when `addr` is a direct address on a public IP. */
export function isPublicAddr(addr: string): boolean {
  const ip = ipOfAddr(addr)
  if (ip === undefined) return false
  return !NOT_PUBLIC.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4')
}

/** The reachability the announced addresses give (see the file comment). */
export function reachabilityOf(addrs: readonly string[]): Reachability {
  if (addrs.some(isPublicAddr)) return 'public'
  if (addrs.some(isCircuitAddr)) return 'relayed'
  return 'private'
}
