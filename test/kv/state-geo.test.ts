/**
 * Geo against Redis's documented Sicily examples (GEOADD scores, GEOPOS, GEODIST in m/km/mi,
 * GEORADIUS / GEOSEARCH BYRADIUS and BYBOX with distances), searches across the antimeridian, and a
 * seeded property: GEOSEARCH finds exactly the members a scan of all of them by exact distance finds.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import type { KvValue } from '../../src/kv/op-types.ts'
import { type GeoSearch, geodist, geopos, geosearch } from '../../src/kv/state/geo.ts'
import { distanceIfInside, GEO_UNITS, geohashDecode } from '../../src/kv/state/geohash.ts'
import { zrange, zscore } from '../../src/kv/state/zset.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { assertProperty } from '../utils/property.ts'
import { apply, at, DB, makeOp } from './state-ops.ts'

async function sicily(): Promise<MemoryOrderedStore> {
  const s = new MemoryOrderedStore()
  await apply(
    s,
    makeOp('geo', 'geoadd', 'Sicily', [13.361389, 38.115556, 'Palermo', 15.087269, 37.502669, 'Catania'], {
      at: 1,
    }),
  )
  return s
}

const fixed = (x: number | undefined, d = 4): string | undefined => x?.toFixed(d)
const f17 = (x: number | undefined): string | undefined => fixed(x, 17)

test("GEOADD scores, GEOPOS and GEODIST are Redis's", async () => {
  const s = await sicily()
  // Redis: ZRANGE Sicily 0 -1 WITHSCORES -> Palermo 3479099956230698, Catania 3479447370796909
  assert.equal(zscore(s, DB, 'Sicily', 'Palermo', at()), 3479099956230698)
  assert.equal(zscore(s, DB, 'Sicily', 'Catania', at()), 3479447370796909)
  assert.deepEqual(
    zrange(s, DB, 'Sicily', { by: 'rank', start: 0, stop: -1 }, at()).map((m) => m.member),
    ['Palermo', 'Catania'],
  )
  const [p, c, none] = geopos(s, DB, 'Sicily', ['Palermo', 'Catania', 'NonExisting'], at())
  // Redis prints positions with 17 decimals.
  assert.deepEqual(p?.map(f17), ['13.36138933897018433', '38.11555639549629859'])
  assert.deepEqual(c?.map(f17), ['15.08726745843887329', '37.50266842333162032'])
  assert.equal(none, undefined)
  assert.equal(fixed(geodist(s, DB, 'Sicily', 'Palermo', 'Catania', at())), '166274.1516')
  assert.equal(fixed(geodist(s, DB, 'Sicily', 'Palermo', 'Catania', { ...at(), unit: 'km' })), '166.2742')
  assert.equal(fixed(geodist(s, DB, 'Sicily', 'Palermo', 'Catania', { ...at(), unit: 'mi' })), '103.3182')
  assert.equal(geodist(s, DB, 'Sicily', 'Foo', 'Bar', at()), undefined)
})

test('GEOSEARCH BYRADIUS and BYBOX, FROMLONLAT and FROMMEMBER, ASC/DESC, COUNT, distances', async () => {
  const s = await sicily()
  const search = (q: GeoSearch): [string, string][] =>
    geosearch(s, DB, 'Sicily', q, at()).map((h) => [h.member, h.distance.toFixed(4)])
  // GEORADIUS Sicily 15 37 200 km WITHDIST ASC
  assert.deepEqual(search({ from: { lon: 15, lat: 37 }, by: { radius: 200, unit: 'km' }, order: 'asc' }), [
    ['Catania', '56.4413'],
    ['Palermo', '190.4424'],
  ])
  await apply(
    s,
    makeOp('geo', 'geoadd', 'Sicily', [12.758489, 38.788135, 'edge1', 17.24151, 38.788135, 'edge2'], {
      at: 2,
    }),
  )
  // GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ASC
  assert.deepEqual(
    search({ from: { lon: 15, lat: 37 }, by: { radius: 200, unit: 'km' }, order: 'asc' }).map(([m]) => m),
    ['Catania', 'Palermo'],
  )
  // GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km ASC WITHCOORD WITHDIST
  const box = geosearch(
    s,
    DB,
    'Sicily',
    { from: { lon: 15, lat: 37 }, by: { width: 400, height: 400, unit: 'km' }, order: 'asc' },
    at(),
  )
  assert.deepEqual(
    box.map((h) => [h.member, h.distance.toFixed(4)]),
    [
      ['Catania', '56.4413'],
      ['Palermo', '190.4424'],
      ['edge2', '279.7403'],
      ['edge1', '279.7405'],
    ],
  )
  assert.deepEqual([box[2]?.lon, box[2]?.lat].map(f17), ['17.24151045083999634', '38.78813451624225195'])
  assert.deepEqual(
    search({
      from: { lon: 15, lat: 37 },
      by: { width: 400, height: 400, unit: 'km' },
      order: 'desc',
      count: 2,
    }).map(([m]) => m),
    ['edge1', 'edge2'],
  )
  // GEORADIUSBYMEMBER Sicily Agrigento 100 km
  await apply(s, makeOp('geo', 'geoadd', 'Sicily', [13.583333, 37.316667, 'Agrigento'], { at: 3 }))
  assert.deepEqual(
    search({ from: { member: 'Agrigento' }, by: { radius: 100, unit: 'km' }, order: 'asc' }).map(([m]) => m),
    ['Agrigento', 'Palermo'],
  )
  // COUNT without an order returns the nearest, as Redis does.
  assert.deepEqual(
    search({ from: { lon: 15, lat: 37 }, by: { radius: 500, unit: 'km' }, count: 1 }).map(([m]) => m),
    ['Catania'],
  )
  assert.deepEqual(search({ from: { lon: 15, lat: 37 }, by: { radius: 10, unit: 'km' } }), [])
})

test('searches cross the antimeridian and reach high latitudes', async () => {
  const s = new MemoryOrderedStore()
  await apply(
    s,
    makeOp(
      'geo',
      'geoadd',
      'g',
      [179.95, 0, 'east', -179.95, 0, 'west', 0, 0, 'far', 10, 84.9, 'north', 100, 84.9, 'north2'],
      { at: 1 },
    ),
  )
  const found = (q: GeoSearch): string[] =>
    geosearch(s, DB, 'g', q, at())
      .map((h) => h.member)
      .sort()
  assert.deepEqual(found({ from: { lon: 180, lat: 0 }, by: { radius: 20, unit: 'km' } }), ['east', 'west'])
  assert.deepEqual(found({ from: { lon: -179.99, lat: 0.01 }, by: { width: 30, height: 30, unit: 'km' } }), [
    'east',
    'west',
  ])
  assert.deepEqual(found({ from: { lon: 55, lat: 85 }, by: { radius: 600, unit: 'km' } }), [
    'north',
    'north2',
  ])
})

test('property: GEOSEARCH finds exactly the members inside the shape', async () => {
  const point = fc.tuple(
    fc.double({ min: -180, max: 180, noNaN: true }),
    fc.double({ min: -85, max: 85, noNaN: true }),
  )
  await assertProperty(
    fc.asyncProperty(
      fc.array(point, { minLength: 1, maxLength: 60 }),
      point,
      fc.oneof(
        fc.record({ radius: fc.double({ min: 0.1, max: 3000, noNaN: true }) }),
        fc.record({
          width: fc.double({ min: 0.1, max: 4000, noNaN: true }),
          height: fc.double({ min: 0.1, max: 4000, noNaN: true }),
        }),
      ),
      async (points, [cLon, cLat], size) => {
        const s = new MemoryOrderedStore()
        const args: KvValue[] = points.flatMap(([lon, lat], i) => [lon, lat, `m${i}`])
        // Plus points near the centre, so most searches find something.
        args.push(cLon * 0.999, cLat * 0.999, 'near')
        await apply(s, makeOp('geo', 'geoadd', 'g', args, { at: 1 }))
        const by =
          'radius' in size
            ? { radius: size.radius, unit: 'km' as const }
            : { width: size.width, height: size.height, unit: 'km' as const }
        const got = geosearch(s, DB, 'g', { from: { lon: cLon, lat: cLat }, by }, at())
          .map((h) => h.member)
          .sort()
        const shape =
          'radius' in size
            ? { radiusM: size.radius * GEO_UNITS.km }
            : { widthM: size.width * 1000, heightM: size.height * 1000 }
        const want = zrange(s, DB, 'g', { by: 'rank', start: 0, stop: -1 }, at())
          .filter((m) => {
            const [lon, lat] = geohashDecode(m.score)
            return distanceIfInside(shape, lon, lat, cLon, cLat) !== undefined
          })
          .map((m) => m.member)
          .sort()
        assert.deepEqual(got, want)
      },
    ),
    { numRuns: 300 },
  )
})
