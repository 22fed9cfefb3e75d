/**
 * Debian's headless Chromium through playwright-core, for the dashboard's browser tests: where it is,
 * how it is started, whether a test may skip without it, and a page that records what went wrong in it.
 *
 * Chromium: `apt-get install chromium` (.ci/run does). Without it a browser test skips outside CI, and
 * fails in CI.
 */
import { existsSync } from 'node:fs'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
export const haveChromium = existsSync(CHROMIUM)

/** The `skip` option of a browser test's describe: false, or why it skips (outside CI only). */
export const skipBrowser: false | string =
  haveChromium || process.env.CI !== undefined
    ? false
    : `${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium) to run this test`

/** Start Chromium. @throws Error when it is not installed (CI must have it). */
export async function launchChromium(): Promise<Browser> {
  if (!haveChromium) {
    throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium package (.ci/run)`)
  }
  return await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 })
}

export interface WatchedPage {
  context: BrowserContext
  page: Page
  /** Page errors and console errors, as they happened. */
  problems: string[]
  /** URLs the page requested outside `origin` (data: URLs aside). */
  outside: string[]
}

/**
 * A new context and page (1280 × 900, 30 s default timeout) that records its errors and any request
 * it makes outside `origin`. Close `context` when done.
 */
export async function watchedPage(
  browser: Browser,
  origin: string,
  options: { acceptDownloads?: boolean } = {},
): Promise<WatchedPage> {
  const context = await browser.newContext({
    acceptDownloads: options.acceptDownloads ?? false,
    viewport: { width: 1280, height: 900 },
  })
  const page = await context.newPage()
  page.setDefaultTimeout(30_000)
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`)
  })
  const outside: string[] = []
  page.on('request', (req) => {
    if (!req.url().startsWith(origin) && !req.url().startsWith('data:')) outside.push(req.url())
  })
  return { context, page, problems, outside }
}

/** Open the dashboard at `origin` and paste `token` into its token form. */
export async function openDashboard(page: Page, origin: string, token: string): Promise<void> {
  await page.goto(`${origin}/`, { waitUntil: 'load', timeout: 30_000 })
  await page.getByRole('heading', { name: 'Storage' }).waitFor()
  await page.getByLabel('API token').fill(token)
  await page.getByRole('button', { name: 'Use token' }).click()
  await page.getByText('Token set (this tab only)').waitFor()
}
