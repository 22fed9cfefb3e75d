/**
 * The CLI's error codes (docs/ERRORS.md): keys in the data directory, ports, local files, and the
 * client's connection to a node.
 * Pure table: HTTP status, what happened, what to do; its codes join `ErrorCode` below.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

export const CLI_ERRORS = defineErrors({
  KEYS_EXIST: {
    status: 409,
    what: '`init` found keys already in the data directory',
    fix: 'use another `--data-dir`; nodus never overwrites keys',
  },
  KEYS_MISSING: {
    status: 400,
    what: 'no keys or API token in the data directory',
    fix: 'run `nodus init --data-dir DIR` first',
  },
  PORT_IN_USE: {
    status: 409,
    what: 'a listen or API port is taken',
    fix: 'choose another port (`--api-port`, `--base-port`) or stop what holds it',
  },
  FILE_NOT_FOUND: {
    status: 404,
    what: 'the local file to read does not exist',
    fix: 'check the path',
  },
  NODE_UNREACHABLE: {
    status: 503,
    what: "the CLI could not connect to the node's API, or the connection broke mid-request (ECONNRESET, EPIPE, socket hang up: the node stopped or closed it); raised by the client, never sent by a node",
    fix: 'check the node runs (`nodus status`) and read its log; an interrupted `put` returned no CID and must be run again (its shards expire), an interrupted `get` wrote nothing',
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof CLI_ERRORS> {}
}
