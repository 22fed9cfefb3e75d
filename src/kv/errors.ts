/**
 * The kv area's error codes (docs/ERRORS.md). Typed state (state/): ops whose args do not fit their
 * type, reads of a key holding another type, unknown secondary indexes.
 * Pure table: HTTP status, what happened, what to do; its codes join `ErrorCode` below.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

export const KV_STATE_ERRORS = defineErrors({
  KV_ARGS_INVALID: {
    status: 400,
    what: "an op's type, op name, key, field or args do not fit the kv op catalog (src/kv/state/ops.ts), e.g. a zadd score that is not a number or a member over 512 bytes (from a peer: peerAction `reject`)",
    fix: 'fix the op as the message says; docs list each op and its args',
  },
  KV_WRONG_TYPE: {
    status: 409,
    what: "a read for one type (e.g. HGET) named a key that holds another type (Redis's WRONGTYPE)",
    fix: 'read the key with the commands of its type (`type` tells which)',
  },
  KV_INDEX_NOT_FOUND: {
    status: 404,
    what: 'no secondary index of that name is declared for the database',
    fix: 'declare it first (defineIndex) or use a declared name',
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof KV_STATE_ERRORS> {}
}
