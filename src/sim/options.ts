/** The simulators have no config keys (they take `nodus sim` flags). */
import { defineOptions } from '../common/options.ts'

export const SIM_OPTIONS = defineOptions({})
