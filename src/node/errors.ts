/** The node (composition root) raises no error codes of its own: it raises its areas' codes. */
import { defineErrors } from '../common/errors.ts'

export const NODE_ERRORS = defineErrors({})
