/**
 * The node's own config keys: section `log` of the config file (docs/CONFIG.md). Pure table; the type
 * {@link LogOptions} is derived from it.
 */
import { defineOptions, type OptionsOf } from '../common/options.ts'

/** Section `log`: the node's pino logger. */
export const LOG_OPTIONS = defineOptions({
  level: {
    kind: 'enum',
    default: 'info',
    values: ['trace', 'debug', 'info', 'warn', 'error', 'silent'],
    description: 'pino log level',
  },
  file: {
    kind: 'string',
    default: '',
    description: 'log file; empty writes JSON lines to stderr',
  },
})

/** The values of section `log` (config.log). */
export type LogOptions = OptionsOf<typeof LOG_OPTIONS>
