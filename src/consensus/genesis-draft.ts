/**
 * A genesis on its way round the members (issue 21, `nodus genesis init|sign|verify`): the body is
 * fixed first, then each member, on its own machine, adds its signature to the same file. A draft is
 * the genesis file's JSON (genesis.ts) with `null` in place of the signatures still missing. Every
 * signature covers the whole body, so a body changed after someone signed shows up as that member's
 * signature no longer verifying, and a member refuses to sign such a draft.
 */
import { bytesEqual } from '../common/bytes.ts'
import { NodusError } from '../common/errors.ts'
import { type NodeIdentity, signEd25519, signHybrid } from '../crypto/index.ts'
import {
  type GenesisBody,
  type GenesisMember,
  type GenesisSignature,
  genesisId,
  genesisSigningBytes,
  memberSignatureVerifies,
} from './genesis.ts'

/** A genesis body and, per member in member order, its signature or `null` (not signed yet). */
export interface GenesisDraft {
  body: GenesisBody
  signatures: (GenesisSignature | null)[]
}

/** What {@link genesisDraftStatus} says of one member's signature. */
export type MemberSignatureState = 'signed' | 'unsigned' | 'invalid'

/** Who has signed a draft, and whether it is complete. */
export interface GenesisDraftStatus {
  /** The genesis id the complete file will have: BLAKE3-256 of the body's signing bytes, 32 bytes. */
  id: Uint8Array
  /** One per member, in member order: `invalid` when a signature is there but does not verify. */
  members: (GenesisMember & { index: number; signature: MemberSignatureState })[]
  /** Every member signed and every signature verifies: a node will start with it. */
  complete: boolean
}

/** A draft of `body` that nobody has signed yet. */
export function newGenesisDraft(body: GenesisBody): GenesisDraft {
  return { body, signatures: body.members.map(() => null) }
}

/** Who has signed `draft` (each present signature is verified against the body). */
export function genesisDraftStatus(draft: GenesisDraft): GenesisDraftStatus {
  const message = genesisSigningBytes(draft.body)
  const members = draft.body.members.map((m, index) => {
    const sig = draft.signatures[index] ?? null
    const signature: MemberSignatureState =
      sig === null
        ? 'unsigned'
        : memberSignatureVerifies(draft.body, message, index, sig)
          ? 'signed'
          : 'invalid'
    return { ...m, index, signature }
  })
  return { id: genesisId(draft.body), members, complete: members.every((m) => m.signature === 'signed') }
}

/**
 * Add `identity`'s signature to `draft` (replacing its earlier one, if any): an Ed25519 signature, or
 * a hybrid one in hybrid mode, of the body's signing bytes.
 *
 * @returns a new draft; `index` is the member who signed, `complete` whether every member now has
 * @throws NodusError `GENESIS_NOT_MEMBER` when `identity`'s Ed25519 key (in hybrid mode: and its
 *   ML-DSA-65 key) is not a member's; `GENESIS_INVALID` when a signature already there does not verify
 *   against the body (the body changed after that member signed, or the signature was altered):
 *   signing would endorse a body the others did not
 */
export async function signGenesisDraft(
  draft: GenesisDraft,
  identity: NodeIdentity,
): Promise<GenesisDraft & { index: number; complete: boolean }> {
  const { body } = draft
  const me = identity.ed25519.publicKey.raw
  const index = body.members.findIndex((m) => bytesEqual(m.ed25519, me))
  if (index < 0)
    throw new NodusError(
      'GENESIS_NOT_MEMBER',
      `${identity.peerId.toString()} is not one of the genesis's ${body.members.length} members (\`nodus genesis verify FILE\` lists them)`,
      { details: { members: body.members.length } },
    )
  const member = body.members[index] as GenesisMember
  const hybrid = body.signatureMode === 'hybrid'
  if (hybrid && !bytesEqual(member.mldsa65 ?? new Uint8Array(), identity.mldsa.publicKey))
    throw new NodusError(
      'GENESIS_NOT_MEMBER',
      `members[${index}] has this Ed25519 key but another ML-DSA-65 key than this identity's`,
      { details: { member: index } },
    )
  const status = genesisDraftStatus(draft)
  const broken = status.members.filter((m) => m.signature === 'invalid').map((m) => m.index)
  if (broken.length > 0)
    throw new NodusError(
      'GENESIS_INVALID',
      `genesis: the signatures of members ${broken.join(', ')} do not verify against this body: it changed after they signed (or a signature was altered); sign the file as they signed it`,
      { details: { reason: 'signature does not verify', members: broken } },
    )
  const message = genesisSigningBytes(body)
  const sig: GenesisSignature = hybrid
    ? await signHybrid(identity, message)
    : signEd25519(identity.ed25519, message)
  const signatures = draft.signatures.map((s, i) => (i === index ? sig : s))
  return { body, signatures, index, complete: signatures.every((s) => s !== null) }
}
