/** The config area has no config keys of its own (it assembles the areas' sections; `dataDir` comes from `--data-dir`). */
import { defineOptions } from '../common/options.ts'

export const CONFIG_OPTIONS = defineOptions({})
