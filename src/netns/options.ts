/** The netns area has no config keys (it takes `nodus devnet --netns` flags). */
import { defineOptions } from '../common/options.ts'

export const NETNS_OPTIONS = defineOptions({})
