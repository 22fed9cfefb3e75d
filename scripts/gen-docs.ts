/** Write the generated docs: docs/API.md, docs/CONFIG.md, docs/ERRORS.md, docs/METRICS.md. Run: `npm run docs`. */
import { writeFileSync } from 'node:fs'
import { apiMarkdown, grafanaDashboard, metricsMarkdown } from '../src/api/docs.ts'
import { configMarkdown } from '../src/config/config.ts'
import { errorsMarkdown } from '../src/config/error-table.ts'

const docs: [string, string][] = [
  ['API.md', await apiMarkdown()],
  ['CONFIG.md', configMarkdown()],
  ['ERRORS.md', errorsMarkdown()],
  ['METRICS.md', await metricsMarkdown()],
]
for (const [name, text] of docs) {
  writeFileSync(new URL(`../docs/${name}`, import.meta.url), text)
  console.log(`wrote docs/${name}`)
}
writeFileSync(new URL('../dashboards/nodus.json', import.meta.url), await grafanaDashboard())
console.log('wrote dashboards/nodus.json')
