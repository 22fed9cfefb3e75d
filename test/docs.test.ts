import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { apiMarkdown, metricsMarkdown } from '../src/api/docs.ts'
import { configMarkdown } from '../src/config/config.ts'

for (const [name, gen] of [
  ['API.md', apiMarkdown],
  ['CONFIG.md', async () => configMarkdown()],
  ['METRICS.md', metricsMarkdown],
] as const) {
  test(`docs/${name} is current (regenerate with npm run docs)`, async () => {
    const committed = await readFile(new URL(`../docs/${name}`, import.meta.url), 'utf8')
    assert.equal(committed, await gen())
  })
}
