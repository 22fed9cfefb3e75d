/**
 * Region latency model.
 *
 * Six regions named after the AWS regions whose measured inter-region round-trip times (average ping,
 * ms) are published in "Latency Between AWS Global Regions" (2017), tabulated at
 * https://acomputerscientistlearnsaws.blogspot.com/2017/04/aws-regions.html. Between two regions the
 * RTT is that figure (rounded; the two directions averaged). Inside a region we assume 20 ms (nodes
 * at homes and offices, not in one data centre), and each node adds its own last-mile delay, drawn
 * once, uniform in [0, 10) ms, so RTT(a, b) = REGION_RTT_MS[ra][rb] + access[a] + access[b].
 *
 * The share of nodes per region is an assumption (weights below), roughly where public DHT servers
 * are today: mostly North America and Europe.
 */
import type { Rng } from './rng.ts'

/** Region names, index = region number. */
export const REGIONS: readonly string[] = Object.freeze([
  'us-east',
  'us-west',
  'eu-central',
  'ap-northeast',
  'ap-southeast',
  'sa-east',
])

/** Share of nodes in each region (sums to 1). */
export const REGION_WEIGHTS: readonly number[] = Object.freeze([0.25, 0.15, 0.3, 0.1, 0.12, 0.08])

/** Same-region RTT in ms (assumption). */
export const INTRA_REGION_RTT_MS = 20

/** Round-trip times in ms between regions (N. Virginia, Oregon, Frankfurt, Tokyo, Singapore, São Paulo). */
export const REGION_RTT_MS: readonly (readonly number[])[] = Object.freeze([
  [INTRA_REGION_RTT_MS, 88, 89, 145, 217, 120],
  [88, INTRA_REGION_RTT_MS, 160, 89, 161, 183],
  [89, 160, INTRA_REGION_RTT_MS, 237, 326, 195],
  [145, 89, 237, INTRA_REGION_RTT_MS, 74, 257],
  [217, 161, 326, 74, INTRA_REGION_RTT_MS, 328],
  [120, 183, 195, 257, 328, INTRA_REGION_RTT_MS],
])

/** Per-node last-mile delay added to every RTT, upper bound in ms (uniform in [0, this)). */
export const ACCESS_DELAY_MAX_MS = 10

/** Region and last-mile delay of every node. */
export interface LatencyModel {
  /** Region index of node i (index into {@link REGIONS}). */
  readonly region: Uint8Array
  /** Last-mile delay of node i in ms. */
  readonly accessMs: Float32Array
  /** Flattened REGION_RTT_MS, 6 x 6. */
  readonly matrix: Float64Array
  readonly regions: number
}

/** Pick a region index by {@link REGION_WEIGHTS}. */
export function pickRegion(rng: Rng, weights: readonly number[] = REGION_WEIGHTS): number {
  let u = rng.nextFloat()
  for (let r = 0; r < weights.length; r++) {
    u -= weights[r] as number
    if (u < 0) return r
  }
  return weights.length - 1
}

/** Assign every node a region and a last-mile delay. */
export function buildLatencyModel(n: number, rng: Rng): LatencyModel {
  const region = new Uint8Array(n)
  const accessMs = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    region[i] = pickRegion(rng)
    accessMs[i] = rng.nextFloat() * ACCESS_DELAY_MAX_MS
  }
  const R = REGIONS.length
  const matrix = new Float64Array(R * R)
  for (let a = 0; a < R; a++) for (let b = 0; b < R; b++) matrix[a * R + b] = REGION_RTT_MS[a]?.[b] ?? 0
  return { region, accessMs, matrix, regions: R }
}

/** Round-trip time in ms between nodes a and b. */
export function rttMs(model: LatencyModel, a: number, b: number): number {
  const ra = model.region[a] as number
  const rb = model.region[b] as number
  return (
    (model.matrix[ra * model.regions + rb] as number) +
    (model.accessMs[a] as number) +
    (model.accessMs[b] as number)
  )
}
