/** The simulators raise no error codes of their own (bad flags are INVALID_ARGUMENT). */
import { defineErrors } from '../common/errors.ts'

export const SIM_ERRORS = defineErrors({})
