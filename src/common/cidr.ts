/**
 * CIDR ranges (`10.0.0.0/8`, `fd00::/8`) as Node's `net.BlockList`, and their check for config keys.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net'
import { NodusError } from './errors.ts'

/** A BlockList of CIDR ranges. @throws NodusError INVALID_ARGUMENT for a malformed range */
export function cidrList(ranges: readonly string[]): BlockList {
  const list = new BlockList()
  for (const r of ranges) {
    const [net, bits] = r.split('/')
    const family =
      net !== undefined && isIPv4(net) ? 'ipv4' : net !== undefined && isIPv6(net) ? 'ipv6' : undefined
    const prefix = Number(bits)
    if (
      family === undefined ||
      net === undefined ||
      !Number.isInteger(prefix) ||
      prefix < 0 ||
      prefix > (family === 'ipv4' ? 32 : 128)
    ) {
      throw new NodusError('INVALID_ARGUMENT', `${r} is not a CIDR range (a.b.c.d/N or x:y::/N)`)
    }
    list.addSubnet(net, prefix, family)
  }
  return list
}

/** The problem with a list of CIDR ranges (for a config key's `check`), or undefined. */
export function checkCidrs(ranges: readonly string[]): string | undefined {
  try {
    cidrList(ranges)
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}
