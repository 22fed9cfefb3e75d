/**
 * The config area's error codes (docs/ERRORS.md): a config key with a bad value.
 * Pure table: HTTP status, what happened, what to do; its codes join `ErrorCode` below.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

export const CONFIG_ERRORS = defineErrors({
  CONFIG_INVALID: {
    status: 400,
    what: 'a config key has a bad value',
    fix: 'fix config.json or the flag named in the message',
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof CONFIG_ERRORS> {}
}
