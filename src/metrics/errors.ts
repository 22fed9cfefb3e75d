/** The metrics area raises no error codes of its own. */
import { defineErrors } from '../common/errors.ts'

export const METRICS_ERRORS = defineErrors({})
