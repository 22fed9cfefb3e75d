import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { mulberry32 as rng } from '../../src/common/prng.ts'
import { computeEigenTrust, EigenTrust, type SparseMatrix } from '../../src/trust/index.ts'
import { assertProperty } from '../utils/property.ts'

function matrix(rows: Record<string, Record<string, number>>): SparseMatrix {
  return new Map(Object.entries(rows).map(([from, row]) => [from, new Map(Object.entries(row))]))
}

function approx(actual: number | undefined, expected: number, tol = 1e-9, what = ''): void {
  assert.ok(
    actual !== undefined && Math.abs(actual - expected) <= tol,
    `${what}: ${actual} ≠ ${expected} ± ${tol}`,
  )
}

function sum(scores: Map<string, number>, peers?: Iterable<string>): number {
  let s = 0
  if (peers === undefined) for (const v of scores.values()) s += v
  else for (const p of peers) s += scores.get(p) ?? 0
  return s
}

describe('computeEigenTrust on small graphs with known answers', () => {
  it('3-peer cycle, A pre-trusted, a = 0.5: t = (4, 2, 1) / 7', () => {
    // t_A = (1-a) t_C + a, t_B = (1-a) t_A, t_C = (1-a) t_B  =>  t_A = a / (1 - (1-a)^3) = 4/7.
    const r = computeEigenTrust(matrix({ A: { B: 1 }, B: { C: 1 }, C: { A: 1 } }), ['A'], {
      alpha: 0.5,
      epsilon: 1e-13,
    })
    approx(r.scores.get('A'), 4 / 7, 1e-12, 'A')
    approx(r.scores.get('B'), 2 / 7, 1e-12, 'B')
    approx(r.scores.get('C'), 1 / 7, 1e-12, 'C')
    assert.equal(r.converged, true)
    assert.equal(r.peers, 3)
    assert.equal(r.edges, 3)
  })

  it('4 peers with weighted rows and a dangling peer, a = 0.5: t = (64, 24, 20, 5) / 113', () => {
    // c_AB = 3/4, c_AC = 1/4, c_BC = 1, c_CA = c_CD = 1/2; D trusts nobody, so its row is p = e_A.
    // t_B = ½·¾ t_A, t_C = ½(¼ t_A + t_B), t_D = ½·½ t_C, t_A = ½(½ t_C + t_D) + ½  =>  t_A = 64/113.
    const r = computeEigenTrust(matrix({ A: { B: 3, C: 1 }, B: { C: 1 }, C: { A: 1, D: 1 } }), ['A'], {
      alpha: 0.5,
      epsilon: 1e-13,
    })
    approx(r.scores.get('A'), 64 / 113, 1e-12, 'A')
    approx(r.scores.get('B'), 24 / 113, 1e-12, 'B')
    approx(r.scores.get('C'), 20 / 113, 1e-12, 'C')
    approx(r.scores.get('D'), 5 / 113, 1e-12, 'D')
  })

  it('no pre-trusted peers: p is uniform, and a symmetric graph gives the uniform vector', () => {
    const r = computeEigenTrust(matrix({ A: { B: 1, C: 1 }, B: { A: 1, C: 1 }, C: { A: 1, B: 1 } }), [], {
      epsilon: 1e-12,
    })
    for (const p of ['A', 'B', 'C']) approx(r.scores.get(p), 1 / 3, 1e-12, p)
  })

  it('a = 0 is the basic algorithm: the left principal eigenvector of C', () => {
    // A → B, B → A: Cᵀ has eigenvector (½, ½) for eigenvalue 1; the uniform start is already there.
    const r = computeEigenTrust(matrix({ A: { B: 1 }, B: { A: 1 } }), [], { alpha: 0, epsilon: 1e-12 })
    approx(r.scores.get('A'), 0.5, 1e-12, 'A')
    approx(r.scores.get('B'), 0.5, 1e-12, 'B')
  })

  it('self-trust is ignored and only ratios within a row matter', () => {
    const a = computeEigenTrust(matrix({ A: { A: 100, B: 1 }, B: { A: 2 } }), ['A'], { epsilon: 1e-12 })
    const b = computeEigenTrust(matrix({ A: { B: 7 }, B: { A: 1 } }), ['A'], { epsilon: 1e-12 })
    approx(a.scores.get('A'), b.scores.get('A') as number, 1e-12, 'A')
    approx(a.scores.get('B'), b.scores.get('B') as number, 1e-12, 'B')
  })

  it('weighted pre-trusted distribution p', () => {
    // Nobody trusts anybody: every row is p, so t = p.
    const r = computeEigenTrust(
      new Map(),
      new Map([
        ['A', 3],
        ['B', 1],
      ]),
    )
    approx(r.scores.get('A'), 0.75, 1e-12, 'A')
    approx(r.scores.get('B'), 0.25, 1e-12, 'B')
  })

  it('rejects negative or non-finite local trust and bad options', () => {
    const bad = [
      () => computeEigenTrust(matrix({ A: { B: -1 } }), []),
      () => computeEigenTrust(matrix({ A: { B: Number.NaN } }), []),
      () => computeEigenTrust(matrix({ A: { B: 1 } }), [], { alpha: 1.5 }),
      () => computeEigenTrust(matrix({ A: { B: 1 } }), [], { epsilon: 0 }),
      () => computeEigenTrust(matrix({ A: { B: 1 } }), [], { maxIterations: 0 }),
      () => computeEigenTrust(matrix({ A: { B: 1 } }), new Map([['A', -1]])),
    ]
    for (const f of bad) assert.throws(f, (e) => isNodusError(e, 'INVALID_ARGUMENT'))
  })

  it('an empty matrix and no pre-trusted peers give an empty result', () => {
    const r = computeEigenTrust(new Map(), [])
    assert.equal(r.scores.size, 0)
    assert.equal(r.converged, true)
  })
})

/** A random sparse graph over `n` peers with `degree` out-edges each. */
function randomGraph(n: number, degree: number, seed: number): Map<string, Map<string, number>> {
  const r = rng(seed)
  const m = new Map<string, Map<string, number>>()
  for (let i = 0; i < n; i++) {
    const row = new Map<string, number>()
    for (let d = 0; d < degree; d++) row.set(`p${Math.floor(r() * n)}`, 1 + Math.floor(r() * 20))
    m.set(`p${i}`, row)
  }
  return m
}

describe('convergence', () => {
  it('stops below epsilon within the contraction bound, and reports iterations and residual', () => {
    const g = randomGraph(2000, 8, 1)
    const alpha = 0.15
    const epsilon = 1e-8
    const r = computeEigenTrust(g, ['p0', 'p1', 'p2'], { alpha, epsilon })
    assert.equal(r.converged, true)
    assert.ok(r.residual < epsilon)
    // ‖t(k+1) − t(k)‖₁ ≤ 2 (1 − a)^k, so at most ceil(log(ε/2) / log(1 − a)) + 1 steps.
    const bound = Math.ceil(Math.log(epsilon / 2) / Math.log(1 - alpha)) + 1
    assert.ok(r.iterations <= bound, `${r.iterations} iterations > bound ${bound}`)
    approx(sum(r.scores), 1, 1e-9, 'sum')
  })

  it('reports non-convergence when maxIterations is too small', () => {
    const r = computeEigenTrust(randomGraph(200, 4, 2), ['p0'], { epsilon: 1e-12, maxIterations: 3 })
    assert.equal(r.iterations, 3)
    assert.equal(r.converged, false)
    assert.ok(r.residual >= 1e-12)
  })

  it('a warm start after a small change converges in fewer iterations to the same vector', (t) => {
    const g = randomGraph(3000, 8, 3)
    const pre = ['p0', 'p1', 'p2']
    const epsilon = 1e-9
    const first = computeEigenTrust(g, pre, { epsilon })
    // A few new records.
    g.get('p10')?.set('p11', 50)
    g.get('p20')?.set('p21', 50)
    g.get('p30')?.set('p31', 50)
    const cold = computeEigenTrust(g, pre, { epsilon })
    const warm = computeEigenTrust(g, pre, { epsilon, warmStart: first.scores })
    t.diagnostic(`3000 peers, 24000 edges: cold ${cold.iterations} iterations, warm ${warm.iterations}`)
    assert.ok(warm.iterations < cold.iterations, `warm ${warm.iterations} ≥ cold ${cold.iterations}`)
    let l1 = 0
    for (const [p, v] of cold.scores) l1 += Math.abs(v - (warm.scores.get(p) ?? 0))
    // Both are within residual·(1−a)/a of the fixed point.
    assert.ok(l1 < 2 * epsilon * (0.85 / 0.15), `L1 distance ${l1}`)
  })
})

describe('collusion resistance', () => {
  const alpha = 0.15
  const honest = Array.from({ length: 40 }, (_, i) => `h${i}`)
  const colluders = Array.from({ length: 10 }, (_, i) => `c${i}`)
  const preTrusted = ['h0', 'h1', 'h2']

  function network(mistaken: Record<string, number>): Map<string, Map<string, number>> {
    const r = rng(42)
    const m = new Map<string, Map<string, number>>()
    for (const h of honest) {
      const row = new Map<string, number>()
      for (let d = 0; d < 6; d++)
        row.set(honest[Math.floor(r() * honest.length)] as string, 1 + Math.floor(r() * 10))
      m.set(h, row)
    }
    // Colluders rate each other a million times over and rate no honest peer.
    for (const c of colluders) {
      m.set(c, new Map(colluders.filter((x) => x !== c).map((x) => [x, 1_000_000])))
    }
    for (const [h, s] of Object.entries(mistaken)) m.get(h)?.set('c0', s)
    return m
  }

  /** F = Σ_{i ∉ G} t_i c_iG: the trust honest peers send into the group. */
  function inflow(m: Map<string, Map<string, number>>, scores: Map<string, number>): number {
    const group = new Set(colluders)
    let f = 0
    for (const [from, row] of m) {
      if (group.has(from)) continue
      let total = 0
      let toGroup = 0
      for (const [to, s] of row) {
        if (to === from || !(s > 0)) continue
        total += s
        if (group.has(to)) toGroup += s
      }
      if (total > 0) f += (scores.get(from) ?? 0) * (toGroup / total)
    }
    return f
  }

  it('a group rated by no honest peer keeps no trust (bound: p(G) = 0)', (t) => {
    const m = network({})
    const r = computeEigenTrust(m, preTrusted, { alpha, epsilon: 1e-12 })
    const group = sum(r.scores, colluders)
    // Naive comparison: share of all rating mass the colluders hold when ratings are simply summed.
    let all = 0
    let toGroup = 0
    for (const row of m.values()) {
      for (const [to, s] of row) {
        if (colluders.includes(to)) toGroup += s
        else all += s
      }
    }
    t.diagnostic(
      `10 colluders among 50: EigenTrust total ${group.toExponential(2)}; summed ratings would give ${(toGroup / (all + toGroup)).toFixed(4)}`,
    )
    assert.ok(group <= 1e-10, `colluders hold ${group}`)
  })

  it('with honest peers mistakenly trusting one colluder, the group stays under F·(1 − a)/a (p(G) = 0)', (t) => {
    // Two honest peers (one pre-trusted) give c0 as much local trust as their whole other row.
    const m = network({ h0: 20, h7: 20 })
    const r = computeEigenTrust(m, preTrusted, { alpha, epsilon: 1e-12 })
    const group = sum(r.scores, colluders)
    const f = inflow(m, r.scores)
    const bound = (f * (1 - alpha)) / alpha // p(G) = 0: no colluder is pre-trusted
    // The looser bound that needs no solve: F ≤ Σ over the mistaken peers of t_i · c_iG ≤ their total trust.
    t.diagnostic(
      `2 honest peers trusting a colluder: group total ${group.toFixed(4)}, inflow F ${f.toFixed(4)}, bound F(1−a)/a ${bound.toFixed(4)}`,
    )
    assert.ok(group > 0)
    assert.ok(group <= bound + 1e-9, `group ${group} > bound ${bound}`)
    // The colluders keep all their trust inside the group, so the bound is reached (it is tight).
    approx(group, bound, 1e-6, 'tight bound')
  })

  it('without pre-trusted peers the group keeps at least its share of p (why P must be configured)', (t) => {
    const m = network({})
    const r = computeEigenTrust(m, [], { alpha, epsilon: 1e-12 })
    const group = sum(r.scores, colluders)
    t.diagnostic(`no pre-trusted peers: group total ${group.toFixed(4)} (p(G) = ${colluders.length / 50})`)
    assert.ok(group >= colluders.length / 50 - 1e-9)
    assert.ok(group <= colluders.length / 50 / alpha) // t(G) ≤ p(G) / a when F = 0
  })
})

describe('properties', () => {
  const graph = fc
    .array(fc.tuple(fc.nat(29), fc.nat(29), fc.integer({ min: 0, max: 100 })), { maxLength: 200 })
    .map((edges) => {
      const m = new Map<string, Map<string, number>>()
      for (const [a, b, s] of edges) {
        const row = m.get(`p${a}`) ?? new Map<string, number>()
        m.set(`p${a}`, row)
        row.set(`p${b}`, s)
      }
      return m
    })

  it('scores are a probability distribution (sum 1, non-negative)', async () => {
    await assertProperty(
      fc.property(
        graph,
        fc.uniqueArray(fc.nat(34), { maxLength: 5 }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        (m, pre, alpha) => {
          const r = computeEigenTrust(
            m,
            pre.map((i) => `p${i}`),
            { alpha },
          )
          if (r.peers === 0) return
          let s = 0
          for (const v of r.scores.values()) {
            assert.ok(v >= 0 && Number.isFinite(v))
            s += v
          }
          assert.ok(Math.abs(s - 1) < 1e-9, `sum ${s}`)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('the result does not depend on the order rows and entries were inserted', async () => {
    await assertProperty(
      fc.property(graph, (m) => {
        const reversed = new Map([...m].reverse().map(([k, row]) => [k, new Map([...row].reverse())]))
        const a = computeEigenTrust(m, ['p0'], { epsilon: 1e-12 })
        const b = computeEigenTrust(reversed, ['p0'], { epsilon: 1e-12 })
        for (const [p, v] of a.scores) assert.ok(Math.abs(v - (b.scores.get(p) ?? -1)) < 1e-9)
      }),
      { numRuns: 100 },
    )
  })
})

describe('EigenTrust (stateful)', () => {
  it('turns interaction records into local trust, floored at 0', () => {
    const et = new EigenTrust({ preTrusted: ['A'] })
    et.recordInteraction('A', 'B', 'shard-served', 3)
    et.recordInteraction('A', 'C', 'shard-served')
    et.recordInteraction('A', 'C', 'audit-failed') // 1 − 10 < 0: C gets nothing from A
    et.recordInteraction('B', 'A', 'audit-passed')
    const lt = et.localTrust()
    assert.equal(lt.get('A')?.get('B'), 3)
    assert.equal(lt.get('A')?.get('C'), 0)
    assert.equal(lt.get('B')?.get('A'), 2)
    const r = et.compute()
    assert.equal(r.converged, true)
    assert.ok(et.score('B') > et.score('C'))
    assert.equal(et.score('C'), r.scores.get('C'))
  })

  it('setLocalTrust replaces a row and removeIssuer drops it', () => {
    const et = new EigenTrust({ preTrusted: ['A'] })
    et.setLocalTrust('A', [['B', 1]])
    et.setLocalTrust('A', [['C', 5]])
    assert.deepEqual([...(et.localTrust().get('A') ?? [])], [['C', 5]])
    et.removeIssuer('A')
    assert.equal(et.issuers, 0)
    assert.throws(
      () => et.setLocalTrust('A', [['B', -1]]),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
  })

  it('recomputes incrementally: an unchanged matrix converges in one step from the last result', () => {
    const et = new EigenTrust({ preTrusted: ['p0', 'p1'] })
    for (const [from, row] of randomGraph(500, 6, 9)) et.setLocalTrust(from, row)
    const first = et.compute()
    const again = et.compute()
    assert.ok(first.iterations > 10)
    assert.equal(again.iterations, 1)
    const cold = et.compute({ warmStart: false })
    assert.equal(cold.iterations, first.iterations)
  })

  it('bounds issuers and entries per row', () => {
    const et = new EigenTrust({ maxIssuers: 2, maxEntriesPerRow: 2 })
    et.recordInteraction('A', 'X', 'shard-served', 5)
    et.recordInteraction('A', 'Y', 'timeout', 9) // −9
    et.recordInteraction('A', 'Z', 'shard-served', 1) // row full: evicts the entry closest to 0, X (5)
    const row = et.localTrust().get('A')
    assert.deepEqual(
      [...(row ?? [])],
      [
        ['Y', 0],
        ['Z', 1],
      ],
    )
    et.recordInteraction('B', 'X', 'shard-served')
    et.recordInteraction('C', 'X', 'shard-served') // evicts A (least recently updated)
    assert.equal(et.issuers, 2)
    assert.equal(et.localTrust().has('A'), false)
  })
})
