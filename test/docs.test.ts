import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { apiMarkdown, grafanaDashboard, metricsMarkdown } from '../src/api/docs.ts'
import { configMarkdown } from '../src/config/config.ts'
import { errorsMarkdown } from '../src/config/error-table.ts'
import { NodusMetrics } from '../src/metrics/metrics.ts'

for (const [name, gen] of [
  ['API.md', apiMarkdown],
  ['CONFIG.md', async () => configMarkdown()],
  ['ERRORS.md', async () => errorsMarkdown()],
  ['METRICS.md', metricsMarkdown],
] as const) {
  test(`docs/${name} is current (regenerate with npm run docs)`, async () => {
    const committed = await readFile(new URL(`../docs/${name}`, import.meta.url), 'utf8')
    assert.equal(committed, await gen())
  })
}

test('dashboards/nodus.json is current and has a panel for every nodus metric', async () => {
  const committed = await readFile(new URL('../dashboards/nodus.json', import.meta.url), 'utf8')
  assert.equal(committed, await grafanaDashboard())
  const dash = JSON.parse(committed) as { panels: { title: string; targets: { expr: string }[] }[] }
  const names = (await new NodusMetrics().registry.getMetricsAsJSON())
    .map((m) => m.name)
    .filter((n) => n.startsWith('nodus_'))
  for (const n of names) {
    assert.ok(
      dash.panels.some((p) => p.title === n && p.targets.every((t) => t.expr.includes(n))),
      `no panel for ${n}`,
    )
  }
})
