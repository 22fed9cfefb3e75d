/**
 * What a namespace topology is made of: the spec a caller gives, its validation, and the names,
 * addresses and link parameters derived from it (pure: no commands run here).
 */
import { NodusError } from '../common/errors.ts'

/** Kind of NAT a home router does (README.md, "NAT behaviour"). */
export type NatKind = 'cone' | 'symmetric'

/**
 * A topology: `publicHosts` hosts on the public segment, and `homes` home segments, each a NAT router
 * with one host behind it. Latency, jitter and loss apply between any two hosts that are on different
 * access links (every host of the public segment and every router reaches the public switch through its
 * own link with a delay bridge).
 */
export interface TopologySpec {
  /** Hosts on the public segment; the first is the bootstrap (and later relay) host. 1..50, default 1. */
  readonly publicHosts: number
  /** Home segments, each a NAT router namespace with one host namespace behind it. 0..100. */
  readonly homes: number
  /** How many of the homes (the last ones) have a symmetric NAT; the others a cone NAT. 0..homes. */
  readonly symmetric: number
  /**
   * How many of the homes (the last ones, like `symmetric`) have a router that also runs a UPnP
   * Internet Gateway Device (miniupnpd), which maps ports for hosts behind it on request. 0..homes,
   * default 0.
   */
  readonly upnp: number
  /** Round-trip time between two hosts on different links, ms (each access link delays rttMs/4 each way). */
  readonly rttMs: number
  /** Jitter of that round trip's each direction, ± ms, uniform (each link ± jitterMs/2). Default 0. */
  readonly jitterMs: number
  /** Loss of each direction between two hosts, a fraction 0..0.5 (each link 1 - sqrt(1 - loss)). */
  readonly loss: number
  /** Seed of the delay bridges' PRNGs (link i gets seed + i). */
  readonly seed: number
}

/** Defaults of {@link TopologySpec}: one public host, no homes, no latency or loss. */
export const DEFAULT_TOPOLOGY_SPEC: TopologySpec = Object.freeze({
  publicHosts: 1,
  homes: 0,
  symmetric: 0,
  upnp: 0,
  rttMs: 0,
  jitterMs: 0,
  loss: 0,
  seed: 1,
})

/** Namespace names start with this; `cleanup` removes namespaces so named (with any run id). */
export const NETNS_PREFIX = 'nodus-'

/**
 * The public segment's network. Not RFC 2544's benchmarking range (198.18.0.0/15) nor a TEST-NET:
 * libp2p's `isPrivate` (@libp2p/utils private-ip.ts) counts those as private, so AutoNAT would never
 * test such an address, identify would drop it as an observed address and DCUtR would not dial it. The
 * namespaces have no route to the machine's own network, so these addresses never leave it.
 */
export const PUBLIC_SUBNET = '11.18.0.0/24'

/** The first three octets of {@link PUBLIC_SUBNET}. */
const PUBLIC_NET = PUBLIC_SUBNET.split('.').slice(0, 3).join('.')

/**
 * Validated spec, defaults filled in.
 * @throws NodusError INVALID_ARGUMENT naming the field and its range
 */
export function validateSpec(spec: Partial<TopologySpec>): TopologySpec {
  const s = { ...DEFAULT_TOPOLOGY_SPEC, ...spec }
  const check = (name: string, v: number, lo: number, hi: number, int: boolean): void => {
    if (!Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v)))
      throw new NodusError(
        'INVALID_ARGUMENT',
        `${name} must be ${int ? 'a whole number ' : ''}in ${lo}..${hi}, got ${v}`,
      )
  }
  check('publicHosts', s.publicHosts, 1, 50, true)
  check('homes', s.homes, 0, 100, true)
  check('symmetric', s.symmetric, 0, s.homes, true)
  check('upnp', s.upnp, 0, s.homes, true)
  check('rttMs', s.rttMs, 0, 10_000, false)
  check('jitterMs', s.jitterMs, 0, 10_000, false)
  check('loss', s.loss, 0, 0.5, false)
  check('seed', s.seed, 0, 2 ** 32, true)
  if (s.jitterMs > s.rttMs / 2)
    throw new NodusError(
      'INVALID_ARGUMENT',
      `jitter (${s.jitterMs} ms) must be at most half the RTT (${s.rttMs} ms)`,
    )
  return Object.freeze(s)
}

/** What one delay bridge (one access link) does to each direction. */
export interface LinkParams {
  /** One-way delay, ms. */
  readonly delayMs: number
  /** ± jitter, ms. */
  readonly jitterMs: number
  /** Drop probability per frame, 0..1. */
  readonly loss: number
}

/**
 * Per-link parameters giving `spec`'s end-to-end figures over the two access links between two hosts:
 * delay rtt/4 and jitter/2 each way per link, and loss 1 - sqrt(1 - loss) per link, so one direction
 * across two links loses `loss`. Two homes talk across their two routers' links, so home to home has
 * the same RTT as home to public.
 */
export function linkParams(spec: TopologySpec): LinkParams {
  return {
    delayMs: spec.rttMs / 4,
    jitterMs: spec.jitterMs / 2,
    loss: spec.loss === 0 ? 0 : 1 - Math.sqrt(1 - spec.loss),
  }
}

/** Addresses and names of one public host. */
export interface PublicHostPlan {
  readonly role: string
  readonly netns: string
  readonly address: string
}

/** Addresses and names of one home segment. */
export interface HomePlan {
  readonly role: string
  readonly nat: NatKind
  /** Whether the router runs a UPnP IGD (miniupnpd) for the host. */
  readonly upnp: boolean
  /** The host's namespace and address (behind the router). */
  readonly netns: string
  readonly address: string
  readonly router: {
    readonly netns: string
    /** The router's public-segment address: what the public side sees as the home's source. */
    readonly wanAddress: string
    readonly lanAddress: string
  }
  /** The home LAN, CIDR. */
  readonly lan: string
}

/** Every name and address of a run. */
export interface TopologyPlan {
  readonly runId: string
  readonly switchNetns: string
  readonly publicHosts: readonly PublicHostPlan[]
  readonly homes: readonly HomePlan[]
}

/** Namespace name of `role` in run `runId`: `nodus-<runId>-<role>`. */
export function netnsName(runId: string, role: string): string {
  return `${NETNS_PREFIX}${runId}-${role}`
}

/**
 * Names and addresses: public host j (p0, p1, …) at 11.18.0.(10 + j); home i (1-based: h1 behind r1,
 * …) with LAN 10.0.i.0/24 (router .1, host .2) and router WAN address 11.18.0.(100 + i). The last
 * `symmetric` homes have a symmetric NAT, and the last `upnp` homes a router with UPnP.
 * @throws NodusError INVALID_ARGUMENT when `runId` is not 1..12 lowercase letters or digits
 */
export function planTopology(spec: TopologySpec, runId: string): TopologyPlan {
  if (!/^[a-z0-9]{1,12}$/.test(runId))
    throw new NodusError(
      'INVALID_ARGUMENT',
      `run id must be 1..12 lowercase letters or digits, got "${runId}"`,
    )
  const publicHosts = Array.from({ length: spec.publicHosts }, (_, j) => ({
    role: `p${j}`,
    netns: netnsName(runId, `p${j}`),
    address: `${PUBLIC_NET}.${10 + j}`,
  }))
  const homes = Array.from({ length: spec.homes }, (_, k) => {
    const i = k + 1
    return {
      role: `h${i}`,
      nat: (k >= spec.homes - spec.symmetric ? 'symmetric' : 'cone') as NatKind,
      upnp: k >= spec.homes - spec.upnp,
      netns: netnsName(runId, `h${i}`),
      address: `10.0.${i}.2`,
      router: {
        netns: netnsName(runId, `r${i}`),
        wanAddress: `${PUBLIC_NET}.${100 + i}`,
        lanAddress: `10.0.${i}.1`,
      },
      lan: `10.0.${i}.0/24`,
    }
  })
  return { runId, switchNetns: netnsName(runId, 'sw'), publicHosts, homes }
}
