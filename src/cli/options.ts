/** The CLI has no config keys of its own: its flags set other areas' keys (docs/CONFIG.md). */
import { defineOptions } from '../common/options.ts'

export const CLI_OPTIONS = defineOptions({})
