/** The crypto area has no config keys. */
import { defineOptions } from '../common/options.ts'

export const CRYPTO_OPTIONS = defineOptions({})
