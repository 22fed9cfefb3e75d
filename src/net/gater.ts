/**
 * IP-diversity limits against Sybil and eclipse attacks (Saorsa Core's rules; Castro et al., "Secure
 * routing for structured peer-to-peer overlay networks", OSDI 2002, on why an attacker must not place
 * many identities from one network): a libp2p connection gater refusing an inbound connection once
 * its source IP, IPv4 /24 or /16, or IPv6 /64 or /48 already holds the configured number of inbound
 * connections, or once that /24 (/64) opened more than `joinsPerMinute` connections in the last
 * minute. Exempt networks (loopback by default) are never limited. Relayed connections are not
 * counted here (their address is the relay's; the relay applies its own limits).
 *
 * The subnet keys are our own small prefix match; exemptions use Node's `net.BlockList` (common/cidr.ts).
 */
import { type BlockList, isIPv4, isIPv6 } from 'node:net'
import type { MultiaddrConnection } from '@libp2p/interface'
import { cidrList } from '../common/cidr.ts'
import type { Clock } from '../common/clock.ts'
import type { Logger } from '../common/logger.ts'
import { isCircuitAddr } from './connections.ts'

/** The gater's limits (the `net.gater*` keys). Counts are open inbound connections. */
export interface GaterLimits {
  /** Inbound connections from one IP address. */
  perIp: number
  /** Inbound connections from one IPv4 /24. */
  perSubnet24: number
  /** Inbound connections from one IPv4 /16. */
  perSubnet16: number
  /** Inbound connections from one IPv6 /64. */
  perSubnet64: number
  /** Inbound connections from one IPv6 /48. */
  perSubnet48: number
  /** New inbound connections from one IPv4 /24 or IPv6 /64 per minute. */
  joinsPerMinute: number
  /** CIDR ranges never limited (`127.0.0.0/8`, `::1/128`). */
  exempt: readonly string[]
}

/** Why a connection was refused: the label of `nodus_net_gater_refused_total`. */
export type GaterRefusal = 'ip' | 'subnet24' | 'subnet16' | 'subnet64' | 'subnet48' | 'rate'

/** The prefixes an address is counted under, most specific first ({@link subnetKeys}). */
export interface SubnetKeys {
  ip: string
  /** IPv4 /24 or IPv6 /64: also the key of the join rate and of the routing table's cap. */
  narrow: string
  /** IPv4 /16 or IPv6 /48. */
  wide: string
  family: 4 | 6
}

/** The eight 16-bit groups of an IPv6 address (with `::` expanded; an embedded IPv4 tail read). */
function ipv6Groups(addr: string): number[] | undefined {
  let a = addr.split('%')[0] ?? addr
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  if (v4?.[1] !== undefined) {
    const o = v4[1].split('.').map(Number)
    a = `${a.slice(0, -v4[1].length)}${(((o[0] ?? 0) << 8) | (o[1] ?? 0)).toString(16)}:${(((o[2] ?? 0) << 8) | (o[3] ?? 0)).toString(16)}`
  }
  const [head, tail] = a.split('::') as [string, string | undefined]
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const fill = tail === undefined ? 0 : 8 - h.length - t.length
  if (fill < 0) return undefined
  const groups = [...h, ...Array<string>(fill).fill('0'), ...t].map((g) => Number.parseInt(g, 16))
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined
}

/**
 * The keys `ip` is counted under: IPv4 `a.b.c.d`, `a.b.c/24`, `a.b/16`; IPv6 (lower case, expanded)
 * its /64 and /48. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) counts as its IPv4 address.
 * Undefined for something that is not an IP address.
 */
export function subnetKeys(ip: string): SubnetKeys | undefined {
  if (isIPv4(ip)) {
    const [a, b, c] = ip.split('.')
    return { ip, narrow: `${a}.${b}.${c}/24`, wide: `${a}.${b}/16`, family: 4 }
  }
  if (!isIPv6(ip)) return undefined
  const g = ipv6Groups(ip.toLowerCase())
  if (g === undefined) return undefined
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return subnetKeys(`${(g[6] ?? 0) >> 8}.${(g[6] ?? 0) & 0xff}.${(g[7] ?? 0) >> 8}.${(g[7] ?? 0) & 0xff}`)
  }
  const hex = g.map((x) => x.toString(16))
  return {
    ip: hex.join(':'),
    narrow: `${hex.slice(0, 4).join(':')}::/64`,
    wide: `${hex.slice(0, 3).join(':')}::/48`,
    family: 6,
  }
}

/** The IP address of a multiaddr's first component, if it is /ip4 or /ip6 (not for circuit addresses). */
export function ipOfAddr(addr: string): string | undefined {
  if (isCircuitAddr(addr)) return undefined
  const m = /^\/(ip4|ip6)\/([^/]+)/.exec(addr)
  return m?.[2]
}

/** True when `ip` falls in one of the exempt ranges. */
function exempted(list: BlockList, ip: string): boolean {
  const keys = subnetKeys(ip)
  if (keys === undefined) return false
  if (keys.family === 4 && list.check(keys.ip, 'ipv4')) return true
  return isIPv6(ip) && list.check(ip, 'ipv6')
}

/** What the gater needs: the clock (join rate), a log, and the refusal counter. */
export interface DiversityGaterDeps {
  clock: Clock
  logger: Logger
  /** Counts a refusal (`nodus_net_gater_refused_total{reason}`). */
  refused(reason: GaterRefusal): void
}

/** One counted inbound connection (the libp2p MultiaddrConnection, read for its status). */
interface Counted {
  status: string
}

/**
 * The per-IP, per-subnet and join-rate limits on inbound connections. `admit(addr, conn)` decides;
 * libp2p calls it through {@link DiversityGater.gater} (`denyInboundConnection`).
 */
export class DiversityGater {
  readonly #limits: GaterLimits
  readonly #exempt: BlockList
  readonly #deps: DiversityGaterDeps
  /** Live inbound connections by key (ip, /24, /16, /64, /48); closed ones are pruned on each count. */
  readonly #live = new Map<string, Set<Counted>>()
  /** Join times (ms) by /24 or /64, at most `joinsPerMinute` each. */
  readonly #joins = new Map<string, number[]>()
  /** The last time (ms) a refusal was logged, by key: one log line per key per minute. */
  readonly #logged = new Map<string, number>()

  /** @throws NodusError INVALID_ARGUMENT for a malformed exempt range */
  constructor(limits: GaterLimits, deps: DiversityGaterDeps) {
    this.#limits = limits
    this.#exempt = cidrList(limits.exempt)
    this.#deps = deps
  }

  #count(key: string): number {
    const set = this.#live.get(key)
    if (set === undefined) return 0
    for (const c of set) if (c.status !== 'open') set.delete(c)
    if (set.size === 0) this.#live.delete(key)
    return set.size
  }

  /**
   * Admit or refuse an inbound connection from multiaddr `addr`: the refusal's reason, or undefined
   * (then `conn` is counted until its status leaves `open`).
   */
  admit(addr: string, conn: Counted): GaterRefusal | undefined {
    const ip = ipOfAddr(addr)
    if (ip === undefined) return undefined
    const keys = subnetKeys(ip)
    if (keys === undefined || exempted(this.#exempt, ip)) return undefined
    const l = this.#limits
    const checks: [GaterRefusal, string, number][] =
      keys.family === 4
        ? [
            ['ip', `ip ${keys.ip}`, l.perIp],
            ['subnet24', keys.narrow, l.perSubnet24],
            ['subnet16', keys.wide, l.perSubnet16],
          ]
        : [
            ['ip', `ip ${keys.ip}`, l.perIp],
            ['subnet64', keys.narrow, l.perSubnet64],
            ['subnet48', keys.wide, l.perSubnet48],
          ]
    let refusal: [GaterRefusal, string] | undefined
    for (const [reason, key, max] of checks) {
      if (this.#count(key) >= max) {
        refusal = [reason, key]
        break
      }
    }
    const now = this.#deps.clock.now()
    const joins = (this.#joins.get(keys.narrow) ?? []).filter((t) => t > now - 60_000)
    if (refusal === undefined && joins.length >= l.joinsPerMinute) refusal = ['rate', keys.narrow]
    if (refusal !== undefined) {
      this.#refuse(refusal[0], refusal[1], addr, now)
      return refusal[0]
    }
    joins.push(now)
    this.#joins.set(keys.narrow, joins)
    for (const [, key] of checks) {
      let set = this.#live.get(key)
      if (set === undefined) {
        set = new Set()
        this.#live.set(key, set)
      }
      set.add(conn)
    }
    this.#prune(now)
    return undefined
  }

  #refuse(reason: GaterRefusal, key: string, addr: string, now: number): void {
    this.#deps.refused(reason)
    const last = this.#logged.get(key)
    if (last === undefined || now - last >= 60_000) {
      this.#logged.set(key, now)
      this.#deps.logger.warn(
        { reason, subnet: key, addr, limits: this.#limits },
        'inbound connection refused by the IP-diversity limits (net.gater*)',
      )
    }
  }

  /** Drop join records and log times older than a minute once the maps grow (bounded memory). */
  #prune(now: number): void {
    if (this.#joins.size > 4096) {
      for (const [k, times] of this.#joins) if ((times.at(-1) ?? 0) <= now - 60_000) this.#joins.delete(k)
    }
    if (this.#logged.size > 4096) {
      for (const [k, t] of this.#logged) if (t <= now - 60_000) this.#logged.delete(k)
    }
  }

  /** The /24 (IPv4) or /64 (IPv6) `ip` is counted under, or undefined when it is exempt or not an IP. */
  subnetOf(ip: string): string | undefined {
    if (exempted(this.#exempt, ip)) return undefined
    return subnetKeys(ip)?.narrow
  }

  /** Inbound connections counted under `key` (`ip 10.0.0.1`, `10.0.0/24`, ...): for tests and status. */
  counted(key: string): number {
    return this.#count(key)
  }

  /** The libp2p gater hook: `denyInboundConnection` refuses what {@link admit} refuses. */
  readonly denyInboundConnection = (maConn: MultiaddrConnection): boolean =>
    this.admit(maConn.remoteAddr.toString(), maConn) !== undefined
}
