/**
 * The ledger area's error codes (docs/ERRORS.md). Two kinds:
 * - thrown: a malformed transaction or snapshot (peerAction `reject`), a genesis that does not
 *   validate, a batch out of order, a snapshot whose state root does not match;
 * - outcomes: a committed transaction the ledger refuses is not thrown but recorded with one of the
 *   `LEDGER_TX_*` codes below (state.ts `TxOutcome`); it changes nothing but its nonce (README.md).
 * Forged signatures are the crypto area's `SIGNATURE_INVALID`, as an outcome too.
 * Pure table: HTTP status, what happened, what to do; its codes join `ErrorCode`.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

export const LEDGER_ERRORS = defineErrors({
  LEDGER_TX_INVALID: {
    status: 400,
    what: 'a ledger transaction is malformed: not the {sig, body} dag-cbor envelope, over 1,024 bytes, a field of the wrong type or out of bounds, an unknown field or kind (peerAction `reject`; src/ledger/tx.ts); committed anyway, it is refused with this code',
    fix: 'build transactions with a current client (`encodeTx`); `details.reason` names the field',
  },
  LEDGER_NOT_FOUND: {
    status: 404,
    what: 'no such account or token in the ledger (an account exists once it received mana or sent a transaction; a token once created)',
    fix: 'check the key or token id (64 hex digits); wait for the transaction that creates it to commit',
  },
  LEDGER_GENESIS_INVALID: {
    status: 400,
    what: 'the ledger genesis (accounts, mana and tokens of a federation) does not validate: a key that is not 32 bytes, an amount out of bounds, a balance above its capacity, a duplicate account or token',
    fix: 'fix the genesis file as `details.reason` says; every node must start from the same genesis',
  },
  LEDGER_BATCH_OUT_OF_ORDER: {
    status: 409,
    what: 'a committed batch was handed to the ledger out of order: its height is not the next one, or its commit timestamp is older than the previous batch’s',
    fix: 'a bug in the caller (the consensus area hands batches in commit order, each height once); restart from the last applied height (`ledger.height`)',
  },
  LEDGER_STATE_INCOMPLETE: {
    status: 500,
    what: 'the ledger store holds state entries but no head: a snapshot import was interrupted, or the store is not a ledger',
    fix: 'delete the ledger directory and import a snapshot (or replay from genesis) again',
  },
  LEDGER_SNAPSHOT_INVALID: {
    status: 400,
    what: 'a ledger snapshot chunk is malformed: not dag-cbor, out of sequence, keys out of order, an entry that does not decode or sits in the wrong bucket, or over ledger.snapshotChunkBytes (peerAction `reject`)',
    fix: 'fetch the snapshot again from another node; the store was left empty',
  },
  LEDGER_SNAPSHOT_ROOT_MISMATCH: {
    status: 409,
    what: 'an imported ledger snapshot does not give the state root it claims, or the one the caller expected (from a commit) (peerAction `ban`)',
    fix: 'fetch the snapshot from another node; the store was left empty',
  },
  LEDGER_SNAPSHOT_STALE: {
    status: 409,
    what: 'the ledger applied a batch while a snapshot was being exported, or the height asked for is not the current one',
    fix: 'export again (at a quiet moment, or from a node that has stopped applying); only the current height can be exported',
  },
  LEDGER_SNAPSHOT_NOT_EMPTY: {
    status: 409,
    what: 'a snapshot can only be imported into an empty store',
    fix: 'import into a new, empty ledger directory',
  },
})

/** Why a committed transaction was refused (state.ts `TxOutcome.code`). */
export const LEDGER_TX_ERRORS = defineErrors({
  LEDGER_TX_WRONG_CHAIN: {
    status: 400,
    what: 'a ledger transaction names another federation (its `chain` is not this genesis’s chain id): a cross-federation replay',
    fix: 'sign the transaction for this federation’s chain id (`GET /ledger` shows it)',
  },
  LEDGER_TX_BAD_NONCE: {
    status: 409,
    what: 'a ledger transaction’s nonce was used already (a replay) or is 32 or more ahead of its account’s next nonce (a gap beyond the window)',
    fix: 'sign again with the account’s next nonce (`nodus balance` shows it); at most 32 transactions of one account may be in flight',
  },
  LEDGER_TX_INSUFFICIENT_FUNDS: {
    status: 402,
    what: 'the signer’s mana (after regeneration up to the commit time) or token balance is below the amount',
    fix: 'wait for mana to regenerate, or receive tokens first; the nonce was used',
  },
  LEDGER_TX_NOT_ISSUER: {
    status: 403,
    what: 'a mint or burn not signed by the token’s issuer, or a mana.configure not signed by the genesis’s mana authority',
    fix: 'sign with the issuer’s (or the mana authority’s) key',
  },
  LEDGER_TX_TOKEN_UNKNOWN: {
    status: 404,
    what: 'a ledger transaction names a token that was never created',
    fix: 'check the token id (BLAKE3 of the issuer and name; `token.create` prints it)',
  },
  LEDGER_TX_TOKEN_EXISTS: {
    status: 409,
    what: 'a token.create for a name this issuer already used',
    fix: 'use another name; the existing token keeps its supply',
  },
  LEDGER_TX_OVER_CAPACITY: {
    status: 409,
    what: 'a mana transfer would lift the recipient above its mana capacity (an account without capacity holds no mana)',
    fix: 'send less, or have the mana authority raise the recipient’s capacity',
  },
  LEDGER_TX_OVERFLOW: {
    status: 409,
    what: 'a mint or transfer would lift a balance or a token’s supply above 2^53 − 1',
    fix: 'mint less; amounts are integers below 2^53',
  },
  LEDGER_TX_NOT_MEMBER: {
    status: 403,
    what: 'a committee.propose or committee.vote not signed by a member of the current committee (or in a ledger without a committee)',
    fix: 'sign with a current validator’s Ed25519 key (`nodus committee show` lists the members)',
  },
  LEDGER_TX_WRONG_EPOCH: {
    status: 409,
    what: 'a committee.propose or committee.vote names an epoch other than the current + 1, or follows a decision in the same commit (the next epoch has not started)',
    fix: 'name the current epoch + 1 (`nodus committee show`); after a decision, wait for the new epoch',
  },
  LEDGER_TX_EPOCH_DECIDED: {
    status: 409,
    what: 'a committee.propose or committee.vote for an epoch whose committee is already decided: one decision per epoch',
    fix: 'propose for the epoch after the current one (`nodus committee show`)',
  },
  LEDGER_TX_PROPOSAL_UNKNOWN: {
    status: 404,
    what: 'a committee.vote for a hash that no pending proposal has (never proposed, replaced by its proposer, or dropped at the last epoch change)',
    fix: 'vote for a hash that `nodus committee show` lists as pending',
  },
  LEDGER_TX_COMMITTEE_INVALID: {
    status: 400,
    what: 'a committee.propose whose members do not fit the federation’s signature mode (hybrid: every member needs an ML-DSA-65 key; Ed25519: none may have one)',
    fix: 'list the members with the keys the genesis’s signature mode needs',
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof LEDGER_ERRORS>, CodesOf<typeof LEDGER_TX_ERRORS> {}
}
